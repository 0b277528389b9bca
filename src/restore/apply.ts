/**
 * The one restore applier, shared by `pgha restore`, `pgha standby` and `pgha drill`:
 * plan from the repository (nothing is downloaded for a plan that cannot succeed), fetch
 * the base backup (assembled from its chain when it is incremental; into an existing
 * directory with --delta) into the data directory, write the recovery configuration.
 */

import { resolve } from "node:path";
import { checkAsPlanned } from "../backup/chain-manifest.js";
import type { DeltaPlan } from "../backup/delta-plan.js";
import { fetchBaseBackup } from "../backup/fetch-backup.js";
import { MapSpill } from "../backup/map-spill.js";
import { putPgControlInPlace } from "../backup/pg-control-last.js";
import { describeSystemError, LocalIoError, PghaError } from "../errors.js";
import type { Logger } from "../log.js";
import { type BackupFileEntry, readBackupManifest } from "../repository/backup-manifest.js";
import { unknownClusterError } from "../repository/clusters.js";
import type { ObjectStore } from "../storage/object-store.js";
import { chownTree, type DataOwner } from "./data-owner.js";
import { gatherRestoreFacts } from "./facts.js";
import { type PlanOutcome, type PlanRefusal, planRestore, type RestorePlan } from "./plan.js";
import type { RecoverySpec } from "./recovery-config.js";
import type { RestoreRequest } from "./target.js";
import { writeRecoveryConfig } from "./write-recovery-config.js";

export interface RestoreDeps {
  store: ObjectStore;
  cluster: string;
  log: Logger;
  /** How many of the backup's objects are fetched at once (--jobs). */
  jobs: number;
  /** Stops the fetch (see FetchBackupDeps.signal). */
  signal?: AbortSignal | undefined;
}

/**
 * Reads the catalog and plans; a refusal is a value, not an exception. A cluster the
 * repository does not hold (a typo in --cluster or --repo) is not found (exit 13, naming
 * the clusters it has), not a plan that cannot succeed.
 */
export async function planFromRepository(
  deps: Omit<RestoreDeps, "jobs">,
  request: RestoreRequest,
): Promise<PlanOutcome> {
  const facts = await gatherRestoreFacts(deps.store, deps.cluster, deps.log);
  if (facts.backups.length === 0) {
    const unknown = await unknownClusterError(deps.store, deps.cluster);
    if (unknown) throw unknown;
  }
  const outcome = planRestore(facts, request);
  return outcome.ok
    ? { ok: true, plan: await hydratePlan(deps.store, outcome.plan, deps.log) }
    : outcome;
}

/**
 * The chosen backup read again whole: the facts keep manifests without their files
 * (facts.ts). It must still be the backup that was planned. Its chain's manifests are read
 * whole one at a time while the restore is planned (assemble-backup.ts, planChain): held
 * at once, a chain of manifests of 100,000 files each would not fit in memory.
 */
async function hydratePlan(
  store: ObjectStore,
  plan: RestorePlan,
  log: Logger,
): Promise<RestorePlan> {
  const planned = plan.backup;
  // The big block maps wait in a temporary file, not the heap (about 3 MB per GiB of
  // relation data: a restore of a cluster of a few TB would pass Node.js's heap limit).
  const spill = new MapSpill(log, undefined, true);
  const files: BackupFileEntry[] = [];
  const whole = await readBackupManifest(store, planned.cluster, planned.id, {
    eachFile: (file) =>
      files.push(file.blocks ? { ...file, blocks: spill.keep(file.blocks) } : file),
  });
  checkAsPlanned(planned, whole);
  return { ...plan, backup: { ...whole, files } };
}

/** The error a refused plan raises where a restore must stop: exit 11, nothing downloaded. */
export function refusalError(
  refusal: PlanRefusal,
  details?: Readonly<Record<string, unknown>>,
): PghaError {
  if (refusal.missingBackup !== undefined) {
    return new PghaError("notFoundInRepo", `there is no backup ${refusal.missingBackup}`, {
      hint: "'pgha backup list' shows the backups of this cluster",
      details,
    });
  }
  return new PghaError("unrestorable", `cannot restore: ${refusal.reasons.join("; ")}`, {
    hint:
      refusal.gaps.length > 0
        ? "the archive has a hole: WAL after it is unusable for this target; choose a target before the gap or a backup after it"
        : refusal.archiveEnd !== undefined
          ? "choose an earlier time or another --target-timeline, or get the newer WAL archived first (pg_stat_archiver shows failing archive_command runs)"
          : "'pgha backup list' shows the backups and their times",
    details,
  });
}

/** planFromRepository, throwing refusalError when the plan cannot succeed. */
export async function requirePlan(
  deps: Omit<RestoreDeps, "jobs">,
  request: RestoreRequest,
): Promise<RestorePlan> {
  const outcome = await planFromRepository(deps, request);
  if (!outcome.ok) throw refusalError(outcome.refusal);
  return outcome.plan;
}

export interface ApplyRequest {
  plan: RestorePlan;
  /** The new data directory: empty or absent. */
  pgdata: string;
  /** Tablespace name or oid -> directory. */
  tablespaceMap: Map<string, string>;
  /** What to write once the backup is in place (the server version comes from the backup). */
  recovery: Omit<RecoverySpec, "versionNum">;
  /** Run as root: who gets the data directory and tablespaces (decideDataOwner). */
  owner?: DataOwner | undefined;
  /** A storage failure keeps what was written for restore --delta (FetchBackupDeps.resumable). */
  resumable?: boolean | undefined;
  /** restore --delta: pgdata holds a stopped server's data directory (planDeltaRestore). */
  delta?: Pick<DeltaPlan, "keep" | "reuse"> | undefined;
}

/** Fetches the plan's backup into pgdata and writes the recovery configuration. */
export async function applyRestore(deps: RestoreDeps, request: ApplyRequest): Promise<void> {
  const { plan, pgdata, owner } = request;
  const fetched = await fetchBaseBackup(
    {
      store: deps.store,
      log: deps.log,
      progress: () => undefined,
      jobs: deps.jobs,
      signal: deps.signal,
      keep: request.delta?.keep,
      reuse: request.delta?.reuse,
      plannedChain: plan.chain,
      pgControlLast: true,
      resumable: request.resumable,
    },
    plan.backup,
    pgdata,
    request.tablespaceMap,
  );
  await writeRecoveryConfig(pgdata, {
    ...request.recovery,
    versionNum: plan.backup.pgVersionNum,
  });
  if (owner)
    for (const dir of [pgdata, ...fetched.tablespaces.map((ts) => ts.location)]) {
      try {
        await chownTree(dir, owner);
      } catch (error) {
        throw new LocalIoError(
          `cannot give ${dir} to uid ${owner.uid}: ${describeSystemError(error)}`,
          {
            cause: error,
          },
        );
      }
    }
  // Last: a restore stopped before this leaves a directory no server starts.
  await putPgControlInPlace(resolve(pgdata));
}
