/**
 * storeBundles: a backup's bundles built by `jobs` job workers and stored, `jobs` at a
 * time, largest first. On failure the running ones are stopped and every put has settled
 * (so the caller's cleanup sees everything that was stored) before the first error is
 * thrown.
 */
import { availableParallelism } from "node:os";
import type { Compression } from "../compress/compression.js";
import type { BackupFileEntry, BackupObjectEntry } from "../repository/backup-manifest.js";
import { backupDataKey } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type Bundle, largestFirst } from "./bundle-plan.js";
import { isAbort, JobPool, runEach } from "./job-pool.js";
import type { PackResult } from "./pack-bundle.js";

export interface StoreBundlesDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  jobs: number;
}

export interface StoredBundle {
  object: BackupObjectEntry;
  files: BackupFileEntry[];
}

/** Every bundle stored under backup `id`: what the manifest lists for each. */
export async function storeBundles(
  deps: StoreBundlesDeps,
  id: string,
  bundles: readonly Bundle[],
  onBytes: (n: number) => void,
): Promise<Map<Bundle, StoredBundle>> {
  const stored = new Map<Bundle, StoredBundle>();
  const pool = new JobPool(deps.jobs);
  const cores = availableParallelism();
  // Fewer jobs than cores: libzstd's own threads take the rest.
  const zstdThreads = deps.jobs < cores ? Math.max(1, Math.floor(cores / deps.jobs) - 1) : 0;
  // Puts whose job is done but whose upload is still finishing (its last part and the
  // completion of a multipart upload, or all of a single PUT, which starts only once the
  // body has ended): the job takes its next bundle meanwhile. At most `jobs` of them.
  const finishing = new Set<Promise<void>>();
  let putFailure: { error: unknown } | undefined;
  let runFailure: { error: unknown } | undefined;
  try {
    await runEach(
      largestFirst(bundles, (b) => b.bytes),
      deps.jobs,
      async (bundle, signal, failing) => {
        while (finishing.size >= deps.jobs) await Promise.race(finishing);
        if (signal.aborted) return; // another failed meanwhile: its error is thrown
        const key = backupDataKey(deps.cluster, id, bundle.part, bundle.index);
        const job = pool.pack(
          {
            part: bundle.part,
            root: bundle.root,
            entries: bundle.entries,
            compression: deps.compression,
            zstdThreads,
          },
          onBytes,
          signal,
        );
        const storing = deps.store.put(key, job.body, {
          metadata: { "pgha-format": "1", "pgha-compression": deps.compression.algorithm },
        });
        // A put that fails on its own stops the others at once, and this job if it did not
        // read the whole body (a refused request).
        let putFailedFirst = false;
        storing.catch(() => {
          putFailedFirst = !signal.aborted;
          failing();
          job.body.destroy();
        });
        let result: PackResult;
        try {
          result = await job.result;
        } catch (error) {
          await storing.catch(() => undefined);
          // The job's own failure (a file it could not read) explains the put's; a stop
          // explains nothing unless this job's put failed first.
          if (!isAbort(error) || !putFailedFirst) throw error;
          throw await storing.then(
            () => error,
            (putError: unknown) => putError,
          );
        }
        const done = storing.then(
          () => {
            stored.set(bundle, {
              object: {
                part: bundle.part,
                key,
                compression: deps.compression.algorithm,
                rawSize: result.rawSize,
                storedSize: result.storedSize,
                storedSha256: result.storedSha256,
              },
              files: result.files,
            });
          },
          (error: unknown) => {
            putFailure ??= { error };
          },
        );
        const tracked = done.finally(() => finishing.delete(tracked));
        finishing.add(tracked);
      },
    );
  } catch (error) {
    runFailure = { error };
  } finally {
    // Nothing is left in flight, whatever happened.
    while (finishing.size > 0) await Promise.allSettled([...finishing]);
    await pool.close();
  }
  if (runFailure && !isAbort(runFailure.error)) throw runFailure.error;
  if (putFailure) throw putFailure.error;
  if (runFailure) throw runFailure.error;
  return stored;
}
