/**
 * Where a WAL name is stored: its plain key, or its content-addressed keys on a store
 * whose conditional writes are not proven (s3rver), see FORMAT.md. Tests that damage or
 * delete an archived file go through this instead of building the key.
 */
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { listWalVersions } from "../../src/wal/versions.js";

/** Every object that stores `name` (none when it is not archived). */
export async function archivedWalKeys(
  store: ObjectStore,
  name: string,
  cluster = "main",
): Promise<string[]> {
  const file = parseWalFileName(name);
  if (!file) throw new Error(`not a WAL file name: ${name}`);
  return (await listWalVersions(store, cluster, file)).map((v) => v.key);
}

/** The store a pgha run with this environment opens. */
export function openTestStore(env: Record<string, string>): Promise<ObjectStore> {
  return openStore(resolveConfig({ flags: {}, env, file: undefined }), memoryLogger());
}
