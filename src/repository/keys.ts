/**
 * Repository format v1: the ONLY place that builds object keys. See FORMAT.md.
 *
 *   v1/clusters/<cluster>/identity.json
 *   v1/clusters/<cluster>/wal/<timeline+log, 16 hex>/<segment | .partial | .backup file>
 *   v1/clusters/<cluster>/wal/history/<timeline>.history
 *   ...either of those WAL keys followed by .<sha256 of the raw content> (content-addressed)
 *   v1/clusters/<cluster>/backups/<backup id>/data/<base | tablespace oid>.<n>.tar   (bundles)
 *   v1/clusters/<cluster>/backups/<backup id>/manifest.json   (written last)
 *   v1/clusters/<cluster>/backups/<backup id>/verify.json     (the last verify of it)
 *   v1/clusters/<cluster>/backups/<backup id>/pin.json        (pgha backup pin|unpin)
 *   v1/clusters/<cluster>/backups/<backup id>/relations.json  (relation map, restore find)
 *   v1/clusters/<cluster>/dumps/<dump id>/globals.sql | db-<n>.dump
 *   v1/clusters/<cluster>/dumps/<dump id>/manifest.json       (written last)
 *   v1/clusters/<cluster>/dumps/<dump id>/verify.json         (the last verify of it)
 *   v1/clusters/<cluster>/dumps/<dump id>/pin.json            (pgha dump pin|unpin)
 *   v1/clusters/<cluster>/locks/<name>.json
 *   v1/clusters/<cluster>/drills/<drill id>.json
 *   v1/clusters/<cluster>/schedule/<job name>.json
 *   v1/clusters/<cluster>/probes/if-none-match
 *   v1/clusters/<cluster>/probes/check-<random>   (pgha check: written, read and deleted)
 *   v1/encryption.json       (an encrypted repository's marker, plain JSON)
 *   v1/encryption-key.age    (passphrase mode: the repository's key, age scrypt-encrypted)
 */
import type { WalFileName } from "../wal/names.js";

export const FORMAT_VERSION = 1;
const ROOT = `v${FORMAT_VERSION}`;

/** Every cluster's objects live under this prefix. */
export const CLUSTERS_PREFIX = `${ROOT}/clusters/`;

export function clusterPrefix(cluster: string): string {
  return `${CLUSTERS_PREFIX}${cluster}/`;
}

export function identityKey(cluster: string): string {
  return `${clusterPrefix(cluster)}identity.json`;
}

/**
 * Where wal-push tries whether the store honours conditional writes
 * (ObjectStore.learnCapabilities): a few bytes, rewritten by each probe.
 */
export function conditionalWriteProbeKey(cluster: string): string {
  return `${clusterPrefix(cluster)}probes/if-none-match`;
}

/** A probe object `pgha check` writes, reads back and deletes: one per run. */
export function checkProbeKey(cluster: string, token: string): string {
  return `${clusterPrefix(cluster)}probes/check-${token}`;
}

export function walPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}wal/`;
}

export function walKey(cluster: string, file: WalFileName): string {
  if (file.kind === "history") return `${walPrefix(cluster)}history/${file.name}`;
  // Grouping by timeline+log keeps local directories small (256 files at 16 MiB) and
  // lets later code list or prune one timeline range at a time.
  return `${walPrefix(cluster)}${file.segment.slice(0, 16)}/${file.name}`;
}

/**
 * The content-addressed key of a WAL file: its key followed by `.<sha256>` of its raw
 * content. Where the store's conditional writes are not proven, wal-push stores WAL here
 * (FORMAT.md): equal content gives the same key, different content a different key, so
 * concurrent pushers of one name cannot overwrite each other.
 */
export function walVersionKey(cluster: string, file: WalFileName, sha256: string): string {
  return `${walKey(cluster, file)}.${sha256}`;
}

const VERSION_SUFFIX = /\.([0-9a-f]{64})$/;

/**
 * The WAL file name a key under wal/ stores, and the sha256 its name carries when it is
 * content-addressed (undefined for the plain key). No WAL file name ends in 64 hex digits
 * after a dot, so the two layouts cannot be confused. Whether `name` is a WAL file name
 * at all is the caller's to check (parseWalFileName).
 */
export function walNameOfKey(key: string): { name: string; sha256: string | undefined } {
  const base = key.slice(key.lastIndexOf("/") + 1);
  const version = VERSION_SUFFIX.exec(base);
  if (!version) return { name: base, sha256: undefined };
  return { name: base.slice(0, version.index), sha256: version[1] };
}

export function backupsPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}backups/`;
}

export function backupPrefix(cluster: string, id: string): string {
  return `${backupsPrefix(cluster)}${id}/`;
}

export function backupManifestKey(cluster: string, id: string): string {
  return `${backupPrefix(cluster, id)}manifest.json`;
}

/**
 * Bundle `index` of a part ("base" for the data directory, else the tablespace oid): one
 * tar each. (Backups taken before bundles have one object per part, `data/<part>.tar`;
 * readers take keys from the manifest, never from here.)
 */
export function backupDataKey(cluster: string, id: string, part: string, index: number): string {
  return `${backupPrefix(cluster, id)}data/${part}.${String(index).padStart(5, "0")}.tar`;
}

/** The result of the last `pgha verify` that checked the backup (verify-record.ts). */
export function backupVerifyKey(cluster: string, id: string): string {
  return `${backupPrefix(cluster, id)}verify.json`;
}

/** The pin record of a backup (pin.ts): overrides the manifest's `pinned`. */
export function backupPinKey(cluster: string, id: string): string {
  return `${backupPrefix(cluster, id)}pin.json`;
}

/** The relation map of a backup (find/relation-map.ts): relfilenodes to names, per database. */
export function backupRelationsKey(cluster: string, id: string): string {
  return `${backupPrefix(cluster, id)}relations.json`;
}

export function lockKey(cluster: string, name: string): string {
  return `${clusterPrefix(cluster)}locks/${name}.json`;
}

/** The WAL key prefix of a timeline+log group, e.g. for checking a segment range. */
export function walGroupPrefix(cluster: string, timelineAndLog: string): string {
  return `${walPrefix(cluster)}${timelineAndLog}/`;
}

export function dumpsPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}dumps/`;
}

export function dumpPrefix(cluster: string, id: string): string {
  return `${dumpsPrefix(cluster)}${id}/`;
}

export function dumpManifestKey(cluster: string, id: string): string {
  return `${dumpPrefix(cluster, id)}manifest.json`;
}

/** The result of the last `pgha verify` that checked the dump set (verify-record.ts). */
export function dumpVerifyKey(cluster: string, id: string): string {
  return `${dumpPrefix(cluster, id)}verify.json`;
}

/** The pin record of a dump set (pin.ts): overrides the manifest's `pinned`. */
export function dumpPinKey(cluster: string, id: string): string {
  return `${dumpPrefix(cluster, id)}pin.json`;
}

/** Database names can hold any character: objects are numbered, the manifest names them. */
export function dumpObjectKey(cluster: string, id: string, object: "globals" | number): string {
  return `${dumpPrefix(cluster, id)}${object === "globals" ? "globals.sql" : `db-${object}.dump`}`;
}

export function drillsPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}drills/`;
}

export function drillKey(cluster: string, id: string): string {
  return `${drillsPrefix(cluster)}${id}.json`;
}

export function scheduleStateKey(cluster: string, job: string): string {
  return `${clusterPrefix(cluster)}schedule/${job}.json`;
}

/** Every object of the repository format lives under this prefix. */
export const REPOSITORY_PREFIX = `${ROOT}/`;

/** The marker of an encrypted repository (encryption-marker.ts): plain JSON. */
export const ENCRYPTION_MARKER_KEY = `${ROOT}/encryption.json`;

/** Passphrase mode: the repository's X25519 identity, encrypted with the passphrase (age scrypt). */
export const ENCRYPTION_KEY_KEY = `${ROOT}/encryption-key.age`;

/** Metadata of an encrypted object: its scheme ("age"; encrypting-store.ts writes it). */
export const ENCRYPTION_METADATA = "pgha-encryption";
/** Metadata of an encrypted object: a fingerprint of the recipients it is encrypted to (rekey). */
export const RECIPIENTS_METADATA = "pgha-recipients";
/** Metadata of each identity.json of an encrypted repository (plain-guard.ts reads it). */
export const REPOSITORY_ENCRYPTION_METADATA = "pgha-repository-encryption";

const IDENTITY = /^v1\/clusters\/[^/]+\/identity\.json$/;

/** Whether key is a cluster's identity.json. */
export function isIdentityKey(key: string): boolean {
  return IDENTITY.test(key);
}

const PLAIN_IN_CLUSTER = /^v1\/clusters\/[^/]+\/(identity\.json|locks\/[^/]+|probes\/[^/]+)$/;

/**
 * Whether an object stays unencrypted in an encrypted repository (FORMAT.md, "Encryption"):
 * the marker and the passphrase-encrypted key (age already), each cluster's identity.json
 * (wal-push, which needs no secret, checks every segment against it), its locks and its
 * probes (coordination between writers; nothing of the database is in them).
 */
export function isPlainKey(key: string): boolean {
  return key === ENCRYPTION_MARKER_KEY || key === ENCRYPTION_KEY_KEY || PLAIN_IN_CLUSTER.test(key);
}
