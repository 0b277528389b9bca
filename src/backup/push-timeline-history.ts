/**
 * A backup on timeline N > 1 is restorable only when the repository holds N's history
 * file: the restore planner follows the timeline path through it, and refuses a timeline
 * without one. PostgreSQL archives a history file once, at the promotion, so a repository
 * that was not the archive then (a new repository for the same cluster: a new prefix, an
 * encrypted repository given to an existing cluster) never gets it, and every backup
 * there listed as unrestorable. The backup pushes it from the data directory's pg_wal,
 * where PostgreSQL keeps it, through the ordinary wal-push path (checked, verified,
 * never overwriting different content).
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { historyFileName, parseWalFileName } from "../wal/names.js";
import { type PushDeps, pushWalFile } from "../wal/push.js";
import { listWalVersions } from "../wal/versions.js";

/** Pushes timeline's history file from pgdata/pg_wal when the repository lacks it. */
export async function pushTimelineHistory(
  deps: PushDeps,
  pgdata: string,
  timeline: number,
): Promise<"not-needed" | "present" | "pushed" | "not-in-pg-wal"> {
  if (timeline <= 1) return "not-needed";
  const name = historyFileName(timeline);
  const file = parseWalFileName(name);
  if (!file) throw new Error(`bad history file name ${name}`);
  if ((await listWalVersions(deps.store, deps.cluster, file)).length > 0) return "present";
  const path = join(pgdata, "pg_wal", name);
  try {
    await access(path);
  } catch {
    deps.log.warn(
      `the repository has no ${name} and ${path} is not there: restores of this backup need it (push it with pgha wal-push from the server that has it)`,
    );
    return "not-in-pg-wal";
  }
  await pushWalFile(deps, path);
  deps.log.info(`pushed ${name} from ${path}: the repository did not have it`);
  return "pushed";
}
