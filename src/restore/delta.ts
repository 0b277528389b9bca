/**
 * restore --delta, before anything is written: the target must be a stopped server's
 * data directory; what it holds is read and compared with the plan's backup (planDelta).
 */
import { resolve } from "node:path";
import { filesOf } from "../backup/chain-manifest.js";
import { type DeltaPlan, planDelta } from "../backup/delta-plan.js";
import { refuseRunningServer, scanTargets } from "../backup/delta-scan.js";
import { planTablespaceTargets } from "../backup/tablespace-targets.js";
import type { RestorePlan } from "./plan.js";

export async function planDeltaRestore(
  plan: RestorePlan,
  pgdata: string,
  tablespaceMap: Map<string, string>,
  jobs: number,
): Promise<DeltaPlan> {
  const root = resolve(pgdata);
  await refuseRunningServer(root);
  const parts = [
    { part: "base", root },
    ...planTablespaceTargets(plan.backup, root, tablespaceMap).map((ts) => ({
      part: ts.oid,
      root: ts.location,
    })),
  ];
  const files = filesOf(plan.backup);
  return planDelta(files, await scanTargets(parts, files, jobs));
}
