/**
 * Carries out a prune plan in crash-safe order: each backup's and dump set's manifest
 * first (so a half-deleted one is never listed), then its objects; then debris; WAL
 * last, after the backups that needed it. A rerun after a crash plans again and finishes
 * the job: what lost its manifest is debris then.
 */
import type { Logger } from "../log.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { PrunePlan } from "./plan-prune.js";

async function deleteAll(store: ObjectStore, keys: string[], concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      if (key !== undefined) await store.delete(key);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
}

export async function applyPrune(
  store: ObjectStore,
  plan: PrunePlan,
  log: Logger,
): Promise<number> {
  for (const entry of [...plan.deleteBackups, ...plan.deleteDumps]) {
    const [manifest, ...rest] = entry.keys;
    if (manifest) await store.delete(manifest);
    await deleteAll(store, rest);
    log.info(`deleted ${entry.id}`);
  }
  await deleteAll(
    store,
    plan.deleteDebris.map((o) => o.key),
  );
  await deleteAll(
    store,
    plan.deleteWal.map((o) => o.key),
  );
  if (plan.deleteWal.length > 0) log.info(`deleted ${plan.deleteWal.length} WAL files`);
  return plan.freedBytes;
}
