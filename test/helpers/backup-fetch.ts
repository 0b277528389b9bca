/** Fetching a base backup in unit tests: from any store, with no log or progress to watch. */
import { type FetchResult, fetchBaseBackup } from "../../src/backup/fetch-backup.js";
import { memoryLogger } from "../../src/log.js";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import type { ObjectStore } from "../../src/storage/object-store.js";

/** fetchBaseBackup of `manifest` into `out` with `jobs` jobs, no tablespace mapping. */
export function fetchQuietly(
  store: ObjectStore,
  manifest: BackupManifest,
  out: string,
  jobs: number,
): Promise<FetchResult> {
  return fetchBaseBackup(
    { store, log: memoryLogger(), progress: () => undefined, jobs },
    manifest,
    out,
    new Map(),
  );
}
