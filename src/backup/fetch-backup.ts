/**
 * fetchBaseBackup: rebuild a data directory (and its tablespaces) from a backup. Every
 * file is checked against the manifest's sha256 as it is written, and every object's
 * stored sha256 and tar size once it is read; any mismatch fails the fetch and empties
 * the targets again. Symlinks from the tar are made last, so no entry can write through
 * one. It writes no recovery configuration (the restore command does that). Targets
 * must be empty.
 *
 * `jobs` objects are fetched at once, largest first: this thread downloads and checks the
 * stored bytes, a job worker decompresses and writes them (unpack-bundle.ts). Backups
 * with one object per part (taken before bundles) are read the same way.
 */

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { isAbsolute, join, normalize, resolve } from "node:path";
import { promisify } from "node:util";
import { type Frame, framesOf } from "../compress/frames.js";
import {
  describeSystemError,
  IntegrityError,
  LocalIoError,
  NotFoundError,
  PghaError,
  restoreWriteError,
  StorageError,
  UsageError,
  withRestoreHint,
} from "../errors.js";
import { formatBytes } from "../human-units.js";
import type { Logger } from "../log.js";
import type {
  BackupFileEntry,
  BackupManifest,
  BackupObjectEntry,
} from "../repository/backup-manifest.js";
import type { ObjectStore } from "../storage/object-store.js";
import { damagedWhileRead, resumingGet } from "../storage/retrying-store.js";
import { readFailure } from "../storage/streams.js";
import { assembleBackup } from "./assemble-backup.js";
import type { BlockLookup } from "./block-map.js";
import { largestFirst } from "./bundle-plan.js";
import { chainIds } from "./chain-manifest.js";
import { isAbort, JobPool, runEach } from "./job-pool.js";
import {
  PG_CONTROL_WRITING,
  putPgControlInPlace,
  RESTORE_MARKER,
  writeRestoreMarker,
} from "./pg-control-last.js";
import {
  checkOriginalLocations,
  planTablespaceTargets,
  type TablespaceTarget,
} from "./tablespace-targets.js";
import type { UnpackEvents, UnpackResult, UnpackTask } from "./unpack-bundle.js";

export interface FetchBackupDeps {
  store: ObjectStore;
  log: Logger;
  progress: (doneBytes: number, totalBytes: number) => void;
  /** How many objects are downloaded, decompressed and written at once. */
  jobs: number;
  /** Stops the fetch (a drill interrupted by a signal): it fails and empties the targets. */
  signal?: AbortSignal | undefined;
  /**
   * restore --delta: the targets may hold a data directory (of a stopped server); these
   * files (`${part}/${path}`) are already right and are not written, what the backup does
   * not have is removed (assemble-backup.ts).
   */
  keep?: ReadonlySet<string> | undefined;
  /**
   * restore (not backup fetch, not drill): when the storage still fails past its retries
   * (a transient StorageError), what was written is kept, with the restore marker and
   * without pg_control, for `restore --delta` to finish, instead of being emptied.
   */
  resumable?: boolean | undefined;
  /** restore --delta: blocks already right in files rewritten in place, by `${part}/${path}`. */
  reuse?: ReadonlyMap<string, BlockLookup> | undefined;
  /**
   * The whole manifests of the backup's chain, oldest first, when the caller holds them
   * anyway; else each is read while the restore is planned, one at a time (a chain of
   * manifests of 100,000 files each would not fit in memory at once).
   */
  chain?: readonly BackupManifest[] | undefined;
  /**
   * The chain as the restore plan saw it (manifests without their files): a member read
   * now must still be that backup (same start and stop), not one changed since the plan.
   */
  plannedChain?: readonly Pick<BackupManifest, "id" | "startLsn" | "stopLsn">[] | undefined;
  /**
   * The caller puts global/pg_control in place itself (putPgControlInPlace), after what it
   * writes into the directory (a restore's recovery configuration); else the fetch does,
   * as its last step.
   */
  pgControlLast?: boolean | undefined;
}

export interface FetchResult {
  files: number;
  bytes: number;
  /** Bytes of tar stream in zstd frames nothing was needed from, not decompressed. */
  passedOver?: number;
  tablespaces: { oid: string; name: string; location: string }[];
}

/** Parses --tablespace-map values "NAME_OR_OID=DIR". */
export function parseTablespaceMap(values: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const value of values) {
    const at = value.indexOf("=");
    const dir = value.slice(at + 1);
    if (at <= 0 || !isAbsolute(dir)) {
      throw new UsageError(
        `invalid --tablespace-map '${value}'`,
        "use NAME=/absolute/dir or OID=/absolute/dir",
      );
    }
    map.set(value.slice(0, at), normalize(dir));
  }
  return map;
}

export async function fetchBaseBackup(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  target: string,
  remap: Map<string, string>,
): Promise<FetchResult> {
  const fetched = await fetchInto(deps, manifest, target, remap);
  if (deps.pgControlLast !== true) await putPgControlInPlace(resolve(target));
  return fetched;
}

async function fetchInto(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  target: string,
  remap: Map<string, string>,
): Promise<FetchResult> {
  const root = resolve(target);
  refuseReservedNames(manifest);
  const tablespaces = planTablespaceTargets(manifest, root, remap);
  const targets = [root, ...tablespaces.map((ts) => ts.location)];
  // An incremental backup, or a restore --delta: assembled from the chain (assemble-backup.ts).
  if (deps.keep !== undefined || chainIds(manifest).length > 0)
    return assembleBackup(deps, manifest, root, tablespaces);
  refuseIncremental(manifest);
  for (const dir of targets) await requireEmpty(dir);
  await checkOriginalLocations(tablespaces);
  try {
    return await restoreInto(deps, manifest, root, tablespaces);
  } catch (error) {
    const resumable = await keptForDelta(deps, error, root, tablespaces);
    if (resumable) throw resumable;
    // The targets were empty: remove what this attempt wrote, so no half-restored data
    // directory is left for someone to start.
    for (const dir of targets) await emptyDirectory(dir);
    if (error instanceof PghaError) throw withRestoreHint(error, manifest.id);
    throw restoreWriteError(root, error);
  }
}

/**
 * A restore the storage failed past its retries (deps.resumable): what it wrote stays,
 * which no server starts (the restore marker is there, pg_control is not), and the error
 * says how to finish it; undefined for any other failure, whose targets are emptied. The
 * tablespaces' links are made now (a complete restore makes them last): restore --delta
 * then finds the tablespace directories as this data directory's, not another's.
 */
export async function keptForDelta(
  deps: Pick<FetchBackupDeps, "resumable" | "signal">,
  error: unknown,
  root: string,
  tablespaces: readonly TablespaceTarget[],
): Promise<StorageError | undefined> {
  if (!deps.resumable || deps.signal?.aborted) return undefined;
  if (!(error instanceof StorageError) || !error.transient) return undefined;
  await rm(join(root, PG_CONTROL_WRITING), { force: true });
  if (tablespaces.length > 0) {
    await mkdir(join(root, "pg_tblspc"), { recursive: true, mode: 0o700 });
    for (const ts of tablespaces) {
      const link = join(root, "pg_tblspc", ts.oid);
      await rm(link, { force: true });
      await symlink(ts.location, link);
    }
  }
  const also = tablespaces.length > 0 ? " (and its tablespace directories)" : "";
  return new StorageError(error.message, {
    transient: true,
    cause: error,
    hint: `what was written is kept in ${root}, which no server starts (it has no global/pg_control yet): once the storage answers, run the same restore with --delta to finish it (only what is missing or differs is downloaded), or empty it${also} and restore again`,
  });
}

/** A file of the backup under the name pg_control is written as would be two files in one. */
function refuseReservedNames(manifest: BackupManifest): void {
  const reserved = manifest.files.find(
    (f) => f.part === "base" && (f.path === PG_CONTROL_WRITING || f.path === RESTORE_MARKER),
  );
  if (reserved)
    throw new IntegrityError(
      `backup ${manifest.id} lists ${reserved.path}, a name a restore uses for itself; it was not taken by pgha`,
      "nothing was written; restore another backup (pgha backup list; --backup ID)",
    );
}

/**
 * The full path writes each file from one tar entry: a backup without a chain whose
 * manifest says it is incremental or holds files not whole contradicts itself, and is
 * refused before anything is written rather than restored wrong.
 */
function refuseIncremental(manifest: BackupManifest): void {
  const partial = manifest.files.some((f) => f.stored !== undefined && f.stored !== "whole");
  if (manifest.type !== "incr" && !partial) return;
  throw new PghaError(
    "unrestorable",
    `backup ${manifest.id} is incremental (parent ${manifest.parent ?? "unknown"}) but names no chain to restore it with; nothing was downloaded`,
    {
      hint: "restore a full backup or another incremental one ('pgha backup list' shows the type of each)",
    },
  );
}

/** A job's signal, also aborted by the caller's (deps.signal). */
export function withStop(signal: AbortSignal, deps: FetchBackupDeps): AbortSignal {
  return deps.signal ? AbortSignal.any([signal, deps.signal]) : signal;
}

export async function emptyDirectory(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) await rm(join(dir, name), { recursive: true, force: true });
}

async function restoreInto(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  root: string,
  tablespaces: TablespaceTarget[],
): Promise<FetchResult> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  await writeRestoreMarker(root, manifest.id);
  // An original location: its parent exists (checkOriginalLocations), only it is made.
  for (const ts of tablespaces)
    await mkdir(ts.location, { recursive: ts.mapped, mode: 0o700 }).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    });

  const destOf = new Map<BackupObjectEntry, string>();
  for (const object of manifest.objects) {
    const dest =
      object.part === "base" ? root : tablespaces.find((ts) => ts.oid === object.part)?.location;
    if (!dest)
      throw new IntegrityError(
        `backup ${manifest.id} has an object for unknown tablespace ${object.part}`,
      );
    destOf.set(object, dest);
  }
  // By part, then by the entries' own path strings; seen: the entries themselves (no key
  // string is made per file: with 100,000 files they cost megabytes).
  const expected = new Map<string, Map<string, BackupFileEntry>>();
  for (const file of manifest.files) {
    const part = expected.get(file.part) ?? new Map<string, BackupFileEntry>();
    expected.set(file.part, part);
    part.set(file.path, file);
  }
  const seen = new Set<BackupFileEntry>();
  const links: { path: string; target: string }[] = [];
  const directories = new Map<string, number>();
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    deps.progress(done, manifest.rawBytes);
  };

  const pool = new JobPool(deps.jobs);
  try {
    await runEach(
      largestFirst(manifest.objects, (o) => o.rawSize),
      deps.jobs,
      async (object, signal) => {
        await fetchObject(
          deps.store,
          pool,
          object,
          destOf.get(object) ?? root,
          withStop(signal, deps),
          {
            file: (path, size, sha256) => {
              const entry = expected.get(object.part)?.get(path);
              if (!entry)
                throw new IntegrityError(
                  `${object.key} holds '${path}', which its manifest does not list`,
                );
              if (size !== entry.size || sha256 !== entry.sha256)
                throw new IntegrityError(
                  `${path} from ${object.key} does not match its manifest checksum`,
                );
              seen.add(entry);
            },
            directory: (path, mode) => {
              directories.set(path, mode);
            },
            symlink: (path, target) => {
              links.push({ path, target });
            },
            progress: onBytes,
          },
        );
      },
    );
  } finally {
    await pool.close();
  }
  expected.clear();
  const missing = manifest.files.filter((f) => !seen.has(f));
  if (missing.length > 0) {
    throw new IntegrityError(
      `backup ${manifest.id} is missing ${missing.length} files listed in its manifest (first: ${missing[0]?.path})`,
    );
  }

  await finishTree(manifest, root, tablespaces, directories, links);
  deps.log.info(
    `backup ${manifest.id}: ${seen.size} files (${formatBytes(done)}) restored into ${root}`,
  );
  return {
    files: seen.size,
    bytes: done,
    tablespaces: tablespaces.map(({ oid, name, location }) => ({ oid, name, location })),
  };
}

/**
 * After every object is extracted: directory modes, symlinks, tablespace links and
 * tablespace_map, then a sync of each target's file system.
 */
export async function finishTree(
  manifest: BackupManifest,
  root: string,
  tablespaces: readonly TablespaceTarget[],
  directories: ReadonlyMap<string, number>,
  links: readonly { path: string; target: string }[],
): Promise<void> {
  // Objects were extracted in any order, making directories as files needed them.
  // Permission bits only: no setuid, setgid or sticky bit comes from a repository.
  for (const [path, mode] of directories) {
    if ((await lstat(path)).isDirectory()) await chmod(path, mode & 0o777);
  }
  for (const link of links) await symlink(link.target, link.path);
  // PostgreSQL recreates pg_tblspc links from tablespace_map at recovery start, so the map
  // must name the (possibly remapped) locations; the links are made now as well.
  if (tablespaces.length > 0) {
    await mkdir(join(root, "pg_tblspc"), { recursive: true, mode: 0o700 });
    for (const ts of tablespaces) await symlink(ts.location, join(root, "pg_tblspc", ts.oid));
    if (manifest.tablespaceMap !== null) {
      await writeFile(
        join(root, "tablespace_map"),
        tablespaces.map((ts) => `${ts.oid} ${ts.location}\n`).join(""),
        { mode: 0o600 },
      );
    }
  }
  for (const dir of [root, ...tablespaces.map((ts) => ts.location)]) {
    await promisify(execFile)("sync", ["-f", dir]).catch(() => undefined);
  }
}

/**
 * Downloads one object into a job that extracts it into `dest`; checks the stored bytes'
 * size and sha256 and the tar stream's size against the manifest.
 */
export async function fetchObject(
  store: ObjectStore,
  pool: JobPool,
  object: BackupObjectEntry,
  dest: string,
  signal: AbortSignal,
  events: UnpackEvents,
  plan?: UnpackTask["plan"],
): Promise<UnpackResult> {
  const what = `${store.url}/${object.key}`;
  const { chunks } = await resumingGet(store, object.key, signal).catch((error: unknown) => {
    // The manifest lists it: a missing object is a damaged backup, not "not found".
    if (error instanceof NotFoundError)
      throw new IntegrityError(`${what} is missing, though its backup's manifest lists it`);
    throw error;
  });
  const stop = new AbortController();
  const job = pool.unpack(
    {
      dest,
      compression: object.compression,
      what,
      tablespace: object.part !== "base",
      ...(plan ? { plan, ...framesFor(object) } : {}),
    },
    events,
    AbortSignal.any([signal, stop.signal]),
  );
  const storedHash = createHash("sha256");
  let storedSize = 0;
  let download: { error: unknown } | undefined;
  try {
    for await (const chunk of chunks) {
      storedHash.update(chunk);
      storedSize += chunk.length;
      try {
        await job.send(chunk);
      } catch {
        break; // the job ended early: its result says why
      }
    }
  } catch (error) {
    download = { error };
    stop.abort();
  } finally {
    await chunks.return(undefined);
  }
  job.end();
  let result: UnpackResult;
  try {
    result = await job.result;
  } catch (error) {
    if (!download || !isAbort(error) || signal.aborted) throw error;
    // Rewritten or gone after its first GET (locks keep prune away): damage, which the
    // restore's hint (withRestoreHint) says what to do about.
    const damaged = damagedWhileRead(what, download.error);
    if (damaged) throw damaged;
    // An encrypted object that failed authentication (storage/encrypting-store.ts) stays
    // what it is.
    throw readFailure(
      what,
      download.error,
      "the download broke off (the storage or the network): run the command again once the storage answers",
    );
  }
  if (
    storedSize !== object.storedSize ||
    storedHash.digest("hex") !== object.storedSha256 ||
    result.rawSize !== object.rawSize
  ) {
    throw new IntegrityError(`${what} does not match its manifest checksums`);
  }
  return result;
}

export async function requireEmpty(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new LocalIoError(`cannot read ${dir}: ${describeSystemError(error)}`);
  }
  if (names.length > 0) {
    throw new UsageError(
      `${dir} is not empty; nothing was written`,
      names.includes(RESTORE_MARKER)
        ? `it holds a pgha restore that did not finish: empty it and run the command again (pgha restore --delta --pgdata ${dir} finishes a restore in it)`
        : "fetch into a new or empty directory (pgha never overwrites a data directory)",
    );
  }
}

/** The object's frames, for an unpack that can pass over the ones it needs nothing from. */
function framesFor(object: BackupObjectEntry): { frames?: Frame[] } {
  const frames = framesOf(object);
  return frames && frames.length > 1 ? { frames } : {};
}
