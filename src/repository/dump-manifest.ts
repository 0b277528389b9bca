/**
 * The dump-set manifest: written last, so a dump set without one does not exist (a
 * failed or interrupted dump leaves none, and its objects are removed).
 */
import { IntegrityError, NotFoundInRepoError, RefusedError, UsageError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { BACKUP_ID } from "./backup-manifest.js";
import { getClusterJson, unknownClusterError } from "./clusters.js";
import { putJson } from "./json-object.js";
import { dumpManifestKey, dumpsPrefix } from "./keys.js";

export interface DumpObject {
  key: string;
  compression: "zstd" | "none";
  /** What the program wrote (pg_dump -Fc archive or SQL): size and sha256. */
  rawSize: number;
  sha256: string;
  storedSize: number;
}

export interface DumpDatabase extends DumpObject {
  name: string;
  owner: string;
  /** pg_dump's output format: "custom" (-Fc). */
  format: "custom";
}

export interface DumpManifest {
  format: 1;
  kind: "dump-set";
  id: string;
  cluster: string;
  label: string | null;
  pinned: boolean;
  startTime: string;
  stopTime: string;
  pgVersion: string;
  pgVersionNum: number;
  systemIdentifier: string;
  pgDumpVersion: string;
  noRolePasswords: boolean;
  globals: DumpObject;
  databases: DumpDatabase[];
}

export async function writeDumpManifest(store: ObjectStore, manifest: DumpManifest): Promise<void> {
  await putJson(store, dumpManifestKey(manifest.cluster, manifest.id), manifest, {
    ifAbsent: true,
    exists: () => new RefusedError(`dump set ${manifest.id} already exists`),
  });
}

export async function readDumpManifest(
  store: ObjectStore,
  cluster: string,
  id: string,
): Promise<DumpManifest> {
  const key = dumpManifestKey(cluster, id);
  const manifest = await getClusterJson<DumpManifest>(
    store,
    cluster,
    key,
    () =>
      new NotFoundInRepoError(
        `no dump set ${id} in cluster '${cluster}' of ${store.url}`,
        "'pgha dump list' shows them",
      ),
  );
  const shaped =
    typeof manifest === "object" &&
    manifest !== null &&
    manifest.kind === "dump-set" &&
    typeof manifest.globals === "object" &&
    manifest.globals !== null &&
    Array.isArray(manifest.databases);
  if (!shaped) throw new IntegrityError(`${store.url}/${key} is not a dump set manifest`);
  return manifest;
}

export async function listDumpIds(store: ObjectStore, cluster: string): Promise<string[]> {
  const prefix = dumpsPrefix(cluster);
  const ids: string[] = [];
  for await (const entry of store.list(prefix)) {
    const match = /^([^/]+)\/manifest\.json$/.exec(entry.key.slice(prefix.length));
    if (match?.[1] && BACKUP_ID.test(match[1])) ids.push(match[1]);
  }
  return ids.sort();
}

export async function resolveDump(
  store: ObjectStore,
  cluster: string,
  ref: string,
): Promise<DumpManifest> {
  if (ref === "latest") {
    const id = (await listDumpIds(store, cluster)).at(-1);
    if (!id)
      throw (
        (await unknownClusterError(store, cluster)) ??
        new NotFoundInRepoError(
          `cluster '${cluster}' has no dump sets in ${store.url}`,
          "take one with 'pgha dump'",
        )
      );
    return readDumpManifest(store, cluster, id);
  }
  if (!BACKUP_ID.test(ref)) {
    throw new UsageError(
      `'${ref}' is not a dump set id`,
      "ids look like 20261121T220512Z; 'pgha dump list' shows them, or use latest",
    );
  }
  return readDumpManifest(store, cluster, ref);
}
