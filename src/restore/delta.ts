/**
 * restore --delta, before anything is written: the target must be a stopped server's
 * data directory with its WAL archived; what it holds is read and compared with the
 * plan's backup (planDelta).
 */
import { resolve } from "node:path";
import { filesOf } from "../backup/chain-manifest.js";
import { type DeltaPlan, planDelta } from "../backup/delta-plan.js";
import {
  partDirs,
  refuseRunningServer,
  refuseUnarchivedWal,
  scanTargets,
} from "../backup/delta-scan.js";
import { planTablespaceTargets } from "../backup/tablespace-targets.js";
import { formatBytes, formatDuration } from "../human-units.js";
import type { Logger } from "../log.js";
import { stopSpoolProcesses } from "../wal/spool.js";
import { refuseForeignTablespaces, refuseForeignTarget } from "./delta-target.js";
import type { RestorePlan } from "./plan.js";

export async function planDeltaRestore(
  plan: RestorePlan,
  pgdata: string,
  tablespaceMap: Map<string, string>,
  jobs: number,
  log: Logger,
): Promise<DeltaPlan> {
  const started = performance.now();
  const root = resolve(pgdata);
  await refuseRunningServer(root);
  await refuseForeignTarget(root, plan.backup);
  await refuseUnarchivedWal(root);
  const targets = planTablespaceTargets(plan.backup, root, tablespaceMap);
  const parts = partDirs(plan.backup, root, targets);
  await refuseForeignTablespaces(root, targets, parts[1]?.only ?? "");
  // pgha's own helpers of that server (prefetcher, archiver) must not write into what is
  // rewritten: stopped, as a drill stops those of its copy (the spool is no only copy).
  await stopSpoolProcesses(root);
  const files = filesOf(plan.backup);
  const existing = await scanTargets(parts, files, jobs);
  const delta = planDelta(files, existing);
  const bytes = [...existing.values()].reduce((n, f) => n + f.size, 0);
  log.info(
    `restore --delta: ${existing.size} files (${formatBytes(bytes)}) in ${root} compared with backup ${plan.backup.id} in ${formatDuration((performance.now() - started) / 1000)}`,
  );
  return delta;
}
