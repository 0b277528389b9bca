/**
 * Which backups the last `pgha verify` of each found failed (their verify records): an
 * increment built on one would be no better, so `backup --type incr` takes a full instead.
 */
import { backupVerifyKey } from "../repository/keys.js";
import { readVerifyRecord } from "../repository/verify-record.js";
import type { ObjectStore } from "../storage/object-store.js";

export async function failedVerifies(
  store: ObjectStore,
  cluster: string,
  ids: readonly string[],
): Promise<Set<string>> {
  const failed = new Set<string>();
  for (const id of ids) {
    const record = await readVerifyRecord(store, backupVerifyKey(cluster, id));
    if (record?.ok === false) failed.add(id);
  }
  return failed;
}
