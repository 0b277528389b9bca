/**
 * The base backup manifest: written last, so a backup without a manifest does not exist.
 * Stored as JSON with content metadata (sha256), so every read is verified.
 */
import type { FrameIndex } from "../compress/frames.js";
import { IntegrityError, NotFoundInRepoError, RefusedError, UsageError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { getClusterJson, unknownClusterError } from "./clusters.js";
import { putJson } from "./json-object.js";
import { backupManifestKey, backupsPrefix } from "./keys.js";

export interface BackupFileEntry {
  /** "base" or the tablespace oid: which tar the file is in. */
  part: string;
  /** Path inside that tar ("global/pg_control", "PG_15_202209061/16384/16385"). */
  path: string;
  size: number;
  mode: number;
  mtime: string;
  /** Of the complete file as restored, in a full and an incremental backup alike. */
  sha256: string;
  /**
   * What this backup's bundles hold of the file (absent: "whole"): the file, a delta entry
   * of its changed blocks (delta-entry.ts), or nothing (unchanged since the parent).
   */
  stored?: "whole" | "blocks" | "none";
  /** stored "none" without `blocks`: the id of the backup whose bundles hold it whole. */
  from?: string;
  /** Relation files (block-map.ts), in every backup. */
  blocks?: BlockMap;
  /**
   * A relation file an increment stored whole (--backup-incr-whole): how many of its blocks
   * differed from the parent's copy. The next increment reads a file that changed so much
   * as a full does, once, and stores it whole again.
   */
  changed?: number;
}

/** FORMAT.md, "Incremental backups". */
export interface BlockMap {
  size: 8192;
  /** base64 of the first 16 bytes of each block's sha256. */
  hashes: string;
  /** base64 of one byte a block: the index in `[...chain, id]` of the backup holding it. */
  from: string;
}

export interface BackupObjectEntry {
  part: string;
  key: string;
  compression: "zstd" | "none";
  /** Size of the tar stream before compression (its files carry their own sha256). */
  rawSize: number;
  /** The bytes in the repository. */
  storedSize: number;
  storedSha256: string;
  /**
   * How many entries of `files` are this object's: the files are listed object by object,
   * in the order of `objects` (absent in manifests written before: then a restore that
   * needs one file of a part reads every object of the part).
   */
  files?: number;
  /**
   * The zstd frames the stored bytes are made of (compress/frames.ts; absent in backups
   * taken before, which are one frame): a restore that needs some of the object's bytes
   * only decompresses the frames that hold them.
   */
  frames?: FrameIndex;
}

export interface BackupTablespace {
  oid: string;
  name: string;
  location: string;
}

export interface BackupManifest {
  /** 1 for a full backup, 2 for an incremental one. */
  format: 1 | 2;
  kind: "base-backup";
  id: string;
  /** Absent in manifests written before incremental backups: a full. */
  type?: "full" | "incr";
  /** The backup this one is an increment of (null for a full). */
  parent?: string | null;
  /** Ids from the full to the parent, oldest first ([] for a full). */
  chain?: string[];
  cluster: string;
  label: string | null;
  pinned: boolean;
  pgVersion: string;
  pgVersionNum: number;
  systemIdentifier: string;
  walSegmentSize: number;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  startWal: string;
  stopWal: string;
  startTime: string;
  stopTime: string;
  fromStandby: boolean;
  /**
   * The data directory the backup was read from, as the server named it (absent in
   * manifests written before): restore --delta refuses to follow a copy's tablespace link
   * to a location that directory links to as well.
   */
  dataDirectory?: string;
  compression: string;
  rawBytes: number;
  storedBytes: number;
  tablespaces: BackupTablespace[];
  objects: BackupObjectEntry[];
  files: BackupFileEntry[];
  backupLabel: string;
  tablespaceMap: string | null;
}

/** Sortable, time-based backup id: 20261121T220512Z. */
export function makeBackupId(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

export const BACKUP_ID = /^\d{8}T\d{6}Z$/;

/**
 * An id whose prefix holds nothing yet: a second run in the same second, or after the
 * clock stepped back, must not write into (and on failure delete) another's objects.
 */
export async function freshId(
  store: ObjectStore,
  prefixOf: (id: string) => string,
  now: Date,
): Promise<string> {
  for (let step = 0; step < 60; step++) {
    const id = makeBackupId(new Date(now.getTime() + step * 1000));
    const taken = await store.list(prefixOf(id))[Symbol.asyncIterator]().next();
    if (taken.done) return id;
  }
  throw new RefusedError(
    "no free backup id in the next minute",
    "is the clock far behind the repository's newest backup?",
  );
}

export async function writeBackupManifest(
  store: ObjectStore,
  manifest: BackupManifest,
): Promise<void> {
  await putJson(store, backupManifestKey(manifest.cluster, manifest.id), manifest, {
    ifAbsent: true,
    exists: () =>
      new RefusedError(`backup ${manifest.id} already exists in cluster '${manifest.cluster}'`),
  });
}

/**
 * `withoutFiles`: the manifest with `files` left empty, its elements read past unparsed
 * (a restore plan reads every backup's manifest, and needs no file of most of them).
 * `eachFile`: `files` left empty, each entry handed over in order as it is read instead
 * (a chain's member planned without holding its files); not to be acted on before the
 * read returned (the manifest's checksum is checked at its end).
 */
export async function readBackupManifest(
  store: ObjectStore,
  cluster: string,
  id: string,
  options: { withoutFiles?: boolean; eachFile?: (file: BackupFileEntry) => void } = {},
  skipped?: Map<string, number>,
): Promise<BackupManifest> {
  const key = backupManifestKey(cluster, id);
  const manifest = await getClusterJson<BackupManifest>(
    store,
    cluster,
    key,
    () =>
      new NotFoundInRepoError(
        `no backup ${id} in cluster '${cluster}' of ${store.url}`,
        "'pgha backup list' shows the backups",
      ),
    options.withoutFiles
      ? { skip: FILES, skipped }
      : options.eachFile
        ? { each: new Map([["files", options.eachFile as (file: unknown) => void]]) }
        : undefined,
  );
  const shaped =
    typeof manifest === "object" &&
    manifest !== null &&
    manifest.kind === "base-backup" &&
    [manifest.tablespaces, manifest.objects, manifest.files].every(Array.isArray);
  if (!shaped) throw new IntegrityError(`${store.url}/${key} is not a base backup manifest`);
  return manifest;
}

const FILES: ReadonlySet<string> = new Set(["files"]);

/**
 * A manifest without its file list (`files` is [], never parsed), and how many files it
 * lists: for the readers of every manifest (backup list, verify, prune, the restore
 * planner), which need a backup's header, not 100,000 file entries. Checksummed whole.
 */
export async function readBackupSummary(
  store: ObjectStore,
  cluster: string,
  id: string,
): Promise<BackupManifest & { fileCount: number }> {
  const skipped = new Map<string, number>();
  const manifest = await readBackupManifest(store, cluster, id, { withoutFiles: true }, skipped);
  // Nor the frame indexes (about 45 MB per TiB of backup): list, verify and prune hold
  // every backup's summary at once; a restore reads its manifests whole.
  const objects = manifest.objects.map(({ frames: _frames, ...object }) => object);
  return { ...manifest, objects, fileCount: skipped.get("files") ?? 0 };
}

/** Ids of every backup that has a manifest, oldest first. */
export async function listBackupIds(store: ObjectStore, cluster: string): Promise<string[]> {
  const prefix = backupsPrefix(cluster);
  const ids: string[] = [];
  for await (const entry of store.list(prefix)) {
    const rest = entry.key.slice(prefix.length);
    const match = /^([^/]+)\/manifest\.json$/.exec(rest);
    if (match?.[1] && BACKUP_ID.test(match[1])) ids.push(match[1]);
  }
  return ids.sort();
}

/** Resolves "latest" or an id to a manifest. */
export async function resolveBackup(
  store: ObjectStore,
  cluster: string,
  ref: string,
): Promise<BackupManifest> {
  if (ref === "latest") {
    const ids = await listBackupIds(store, cluster);
    const id = ids.at(-1);
    if (!id)
      throw (
        (await unknownClusterError(store, cluster)) ??
        new NotFoundInRepoError(
          `cluster '${cluster}' has no backups in ${store.url}`,
          "take one with 'pgha backup'",
        )
      );
    return readBackupManifest(store, cluster, id);
  }
  if (!BACKUP_ID.test(ref)) {
    throw new UsageError(
      `'${ref}' is not a backup id`,
      "ids look like 20261121T220512Z; 'pgha backup list' shows them, or use latest",
    );
  }
  return readBackupManifest(store, cluster, ref);
}
