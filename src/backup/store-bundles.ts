/**
 * storeBundles: a backup's bundles built by `jobs` job workers and stored, `jobs` at a
 * time, largest first. `read` resolves once every file has been read (the last uploads
 * may still be finishing: the caller reads pg_control and stops the backup meanwhile),
 * `stored` once every bundle is stored. On failure the running jobs are stopped, and both
 * reject with the first error once every put has settled (so the caller's cleanup sees
 * everything that was stored).
 */
import { availableParallelism } from "node:os";
import type { Compression } from "../compress/compression.js";
import type { BackupFileEntry, BackupObjectEntry } from "../repository/backup-manifest.js";
import { backupDataKey } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type Bundle, largestFirst } from "./bundle-plan.js";
import { isAbort, JobPool, runEach } from "./job-pool.js";
import type { MapSpill } from "./map-spill.js";
import type { PackResult } from "./pack-bundle.js";
import type { ParentLookup } from "./parent-files.js";

export interface StoreBundlesDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  jobs: number;
  /** Where the big block maps of the files stored wait for the manifest (else memory). */
  spill?: MapSpill;
}

/** An incremental backup: its index in `[...chain, id]`, and its parent's entries. */
export interface IncrementalBase {
  chainIndex: number;
  parents: ParentLookup;
  /** A relation file of which this percentage of blocks changed is stored whole. */
  wholePercent: number;
}

export interface StoredBundle {
  object: BackupObjectEntry;
  files: BackupFileEntry[];
}

export interface BundleRun {
  read: Promise<void>;
  stored: Promise<Map<Bundle, StoredBundle>>;
}

/** Every bundle stored under backup `id`, and what the manifest lists for each. */
export function storeBundles(
  deps: StoreBundlesDeps,
  id: string,
  bundles: readonly Bundle[],
  onBytes: (n: number) => void,
  base?: IncrementalBase,
): BundleRun {
  const results = new Map<Bundle, StoredBundle>();
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
  const lanes = runEach(
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
          ...(base
            ? {
                chainIndex: base.chainIndex,
                parents: base.parents(bundle.part, bundle.entries),
                wholePercent: base.wholePercent,
              }
            : {}),
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
      const settled = storing.then(
        () => {
          results.set(bundle, {
            object: {
              part: bundle.part,
              key,
              compression: deps.compression.algorithm,
              rawSize: result.rawSize,
              storedSize: result.storedSize,
              storedSha256: result.storedSha256,
              ...(result.frames ? { frames: result.frames } : {}),
            },
            files: deps.spill
              ? result.files.map((file) => spilled(file, deps.spill))
              : result.files,
          });
        },
        (error: unknown) => {
          putFailure ??= { error };
        },
      );
      const tracked = settled.finally(() => finishing.delete(tracked));
      finishing.add(tracked);
    },
  );
  let readDone: () => void = () => undefined;
  let readFailed: (error: unknown) => void = () => undefined;
  const read = new Promise<void>((resolve, reject) => {
    readDone = resolve;
    readFailed = reject;
  });
  read.catch(() => undefined); // the caller may only wait for `stored`
  const stored = (async () => {
    try {
      await lanes;
      readDone();
    } catch (error) {
      runFailure = { error };
    } finally {
      // Nothing is left in flight, whatever happened.
      while (finishing.size > 0) await Promise.allSettled([...finishing]);
      await pool.close();
    }
    const failure =
      runFailure && !isAbort(runFailure.error) ? runFailure : (putFailure ?? runFailure);
    if (failure) {
      readFailed(failure.error);
      throw failure.error;
    }
    return results;
  })();
  stored.catch(() => undefined);
  return { read, stored };
}

function spilled(file: BackupFileEntry, spill: MapSpill | undefined): BackupFileEntry {
  return file.blocks && spill ? { ...file, blocks: spill.keep(file.blocks) } : file;
}
