/**
 * Carries out a prune plan in crash-safe order: each backup's and dump set's manifest
 * first (so a half-deleted one is never listed), then its objects; then debris; WAL
 * after the backups that needed it; last the files of interrupted local writes. A rerun after a crash plans again and finishes
 * the job: what lost its manifest is debris then.
 *
 * `lock.check()` runs before every delete: a prune whose lock was taken over or ran out
 * (its heartbeat kept failing) stops before it deletes anything more (repository/lock.ts).
 */
import type { Logger } from "../log.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { CatalogEntry, PrunePlan } from "./plan-prune.js";

/** What applyPrune checks before each delete: throws once the run no longer holds its locks. */
export interface LockGuard {
  check(): void;
}

async function deleteAll(
  store: ObjectStore,
  keys: string[],
  lock: LockGuard,
  concurrency = 8,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < keys.length && !failed) {
      const key = keys[next++];
      if (key === undefined) continue;
      try {
        lock.check();
        await store.delete(key);
      } catch (error) {
        failed = true; // the other workers stop too
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
}

/**
 * Deletes backups or dump sets, each manifest first (so a half-deleted one is never
 * listed; its other objects are debris to the next prune), checking the lock before each
 * delete. `backup delete` and `dump delete` use it too.
 */
export async function deleteCatalogEntries(
  store: ObjectStore,
  entries: readonly CatalogEntry[],
  log: Logger,
  lock: LockGuard,
): Promise<void> {
  for (const entry of entries) {
    const [manifest, ...rest] = entry.keys;
    lock.check();
    if (manifest) await store.delete(manifest);
    await deleteAll(store, rest, lock);
    log.info(`deleted ${entry.id}`);
  }
}

/** Deletes keys in the order given, several at once, checking the lock before each. */
export async function deleteKeys(
  store: ObjectStore,
  keys: string[],
  lock: LockGuard,
): Promise<void> {
  await deleteAll(store, keys, lock);
}

export async function applyPrune(
  store: ObjectStore,
  plan: PrunePlan,
  log: Logger,
  lock: LockGuard,
): Promise<number> {
  await deleteCatalogEntries(store, [...plan.deleteBackups, ...plan.deleteDumps], log, lock);
  await deleteAll(
    store,
    plan.deleteDebris.map((o) => o.key),
    lock,
  );
  await deleteAll(
    store,
    plan.deleteWal.map((o) => o.key),
    lock,
  );
  if (plan.deleteWal.length > 0) log.info(`deleted ${plan.deleteWal.length} WAL files`);
  for (const leftover of plan.deleteLeftovers) {
    lock.check();
    await store.deleteLeftover?.(leftover);
  }
  if (plan.deleteLeftovers.length > 0)
    log.info(`deleted ${plan.deleteLeftovers.length} files of interrupted writes`);
  return plan.freedBytes;
}
