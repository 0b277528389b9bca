/**
 * restore --delta, the local side: read what a stopped server's data directory (and its
 * tablespaces) holds, and clear what a restore into an empty directory would not leave.
 * planDelta (delta-plan.ts) decides from what scanTargets reads.
 */
import { lstatSync, readdirSync } from "node:fs";
import { lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describeSystemError, LocalIoError, RefusedError } from "../errors.js";
import { livePostmasterPid } from "../pg/postmaster-pid.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import { largestFirst } from "./bundle-plan.js";
import type { ChainFileEntry } from "./chain-manifest.js";
import type { ExistingFile } from "./delta-plan.js";
import type { HashPiece } from "./hash-files.js";
import { JobPool, runEach } from "./job-pool.js";
import { RESTORE_MARKER } from "./pg-control-last.js";

/** A part of the restore and the directory it goes to. */
export interface PartDir {
  part: string;
  root: string;
  /**
   * A tablespace: only this version directory of its location (PG_15_202209061) is the
   * restore's; whatever else is there (another server version's) is left alone.
   */
  only?: string | undefined;
}

interface Found {
  /** Path relative to the part's root. */
  path: string;
  type: "file" | "directory" | "other";
  size: number;
}

/**
 * The directories a restore of `manifest` writes: the data directory whole, and in each
 * tablespace's location only the backup's version directory.
 */
export function partDirs(
  manifest: BackupManifest,
  root: string,
  tablespaces: readonly { oid: string; location: string }[],
): PartDir[] {
  const version = manifest.files.find((f) => f.part !== "base")?.path.split("/")[0] ?? "";
  return [
    { part: "base", root },
    ...tablespaces.map((ts) => ({ part: ts.oid, root: ts.location, only: version })),
  ];
}

/** The marker of a restore in progress (pg-control-last.ts): neither compared nor removed. */
function isMarker(part: string, path: string): boolean {
  return part === "base" && path === RESTORE_MARKER;
}

/** Entries looked at, by every walk: when to give the event loop a turn. */
let visited = 0;

/**
 * With synchronous calls (a listing of names, an lstat per entry): an awaited lstat per
 * entry (a round trip through libuv's threads each) made a walk of
 * 100,000 files take seconds, and restore --delta walks three times. The event loop gets
 * a turn every few hundred entries (signals).
 */
async function walk(root: string, rel: string, out: Found[]): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(rel === "" ? root : join(root, rel));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const name of names.sort()) {
    if (++visited % 512 === 0) await new Promise((resolve) => setImmediate(resolve));
    const path = rel === "" ? name : `${rel}/${name}`;
    // An entry gone since the listing is left out.
    const stats = lstatSync(join(root, path), { throwIfNoEntry: false });
    if (!stats) continue;
    if (stats.isDirectory()) {
      out.push({ path, type: "directory", size: 0 });
      await walk(root, path, out);
    } else out.push({ path, type: stats.isFile() ? "file" : "other", size: stats.size });
  }
}

/** Every entry under each part's directory (symlinks are not followed). */
async function walkParts(parts: readonly PartDir[]): Promise<Map<string, Found[]>> {
  const found = new Map<string, Found[]>();
  for (const { part, root, only } of parts) {
    const out: Found[] = [];
    try {
      if (only === undefined) await walk(root, "", out);
      else if (only !== "") {
        const top = await lstat(join(root, only)).catch(() => undefined);
        if (top) out.push({ path: only, type: top.isDirectory() ? "directory" : "other", size: 0 });
        if (top?.isDirectory()) await walk(root, only, out);
      }
    } catch (error) {
      throw new LocalIoError(`cannot read ${root}: ${describeSystemError(error)}`, {
        cause: error,
      });
    }
    found.set(part, out);
  }
  return found;
}

/** The backup's files by part and path (the entries' own strings: no key string per file). */
function byPartAndPath(files: readonly ChainFileEntry[]): Map<string, Map<string, ChainFileEntry>> {
  const out = new Map<string, Map<string, ChainFileEntry>>();
  for (const file of files) {
    const part = out.get(file.part) ?? new Map<string, ChainFileEntry>();
    out.set(file.part, part);
    part.set(file.path, file);
  }
  return out;
}

/** A hash task's share: up to this many files or bytes (a message costs little against it). */
const BATCH_FILES = 256;
const BATCH_BYTES = 64 << 20;

/**
 * The regular files of the targets; for those the backup has: the block hashes where its
 * entry has a block map, else the sha256 where the sizes are equal. Hashed in `jobs` job
 * workers, a batch of files each (largest batches first).
 */
export async function scanTargets(
  parts: readonly PartDir[],
  files: readonly ChainFileEntry[],
  jobs: number,
  batchBytes = BATCH_BYTES,
): Promise<Map<string, ExistingFile>> {
  const wanted = byPartAndPath(files);
  const existing = new Map<string, ExistingFile>();
  /** Files hashed in several pieces (larger than a batch): their pieces are put together. */
  const split = new Set<string>();
  const batches: { files: HashPiece[]; keys: string[]; bytes: number }[] = [];
  let batch: (typeof batches)[number] | undefined;
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found) {
      if (f.type !== "file" || isMarker(part, f.path)) continue;
      const key = `${part}/${f.path}`;
      existing.set(key, { size: f.size });
      const entry = wanted.get(part)?.get(f.path);
      if (!entry || !(entry.size === f.size || entry.blocks)) continue;
      const path = join(root, f.path);
      const blockSize = entry.blocks?.size;
      // A block-mapped file in pieces of whole blocks, each hashed on its own.
      const step =
        blockSize === undefined
          ? f.size
          : Math.max(1, Math.floor(batchBytes / blockSize)) * blockSize;
      if (f.size > step) split.add(key);
      for (let start = 0; start === 0 || start < f.size; start += step) {
        if (!batch || batch.keys.length >= BATCH_FILES || batch.bytes >= batchBytes) {
          batch = { files: [], keys: [], bytes: 0 };
          batches.push(batch);
        }
        batch.files.push(
          blockSize === undefined ? { path } : { path, blockSize, start, length: step },
        );
        batch.keys.push(key);
        batch.bytes += Math.min(step, f.size - start);
        if (step === 0) break;
      }
    }
  }
  wanted.clear();
  /** A block-mapped file's block hashes, piece by piece. */
  const pieces = new Map<string, { start: number; hashes: Buffer }[]>();
  const pool = new JobPool(Math.max(1, jobs));
  try {
    await runEach(
      largestFirst(batches, (b) => b.bytes),
      Math.max(1, jobs),
      async (b, signal) => {
        const { hashed } = await pool.hash({ files: b.files }, signal);
        b.keys.forEach((key, at) => {
          const got = hashed[at];
          if (got?.sha256 !== undefined) (existing.get(key) as ExistingFile).sha256 = got.sha256;
          if (got?.blockHashes === undefined) return;
          const { buffer, byteOffset, length } = got.blockHashes;
          const hashes = Buffer.from(buffer, byteOffset, length);
          if (!split.has(key)) {
            (existing.get(key) as ExistingFile).blockHashes = hashes;
            return;
          }
          const list = pieces.get(key) ?? [];
          pieces.set(key, list);
          list.push({ start: b.files[at]?.start ?? 0, hashes });
        });
      },
    );
  } finally {
    await pool.close();
  }
  for (const [key, list] of pieces)
    (existing.get(key) as ExistingFile).blockHashes =
      list.length === 1
        ? list[0]?.hashes
        : Buffer.concat(list.sort((a, b) => a.start - b.start).map((p) => p.hashes));
  return existing;
}

/**
 * Before the fetch: removes every entry of the targets that is not a directory or a file
 * of the backup (files the backup does not have, symlinks: they are made again from the
 * backup, anything else), and whatever stands where the backup has a file but is not one.
 */
export async function removeStrays(
  parts: readonly PartDir[],
  files: readonly ChainFileEntry[],
): Promise<number> {
  const wanted = byPartAndPath(files);
  let removed = 0;
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found) {
      if (isMarker(part, f.path)) continue; // this restore's own (pg-control-last.ts)
      const isWanted = wanted.get(part)?.has(f.path) === true;
      if (f.type === "file" ? isWanted : f.type === "directory" ? !isWanted : false) continue;
      await rm(join(root, f.path), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * After the fetch: removes directories that are neither in the backup's tree (its
 * directory entries) nor above one of its files. Deepest first.
 */
export async function removeStrayDirectories(
  parts: readonly PartDir[],
  directories: ReadonlySet<string>,
  files: readonly ChainFileEntry[],
): Promise<void> {
  const above = new Set<string>();
  for (const f of files) {
    const root = parts.find((p) => p.part === f.part)?.root;
    if (root === undefined) continue;
    const steps = f.path.split("/");
    for (let n = 1; n < steps.length; n++) above.add(join(root, ...steps.slice(0, n)));
  }
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found.reverse()) {
      const path = join(root, f.path);
      if (f.type === "directory" && !directories.has(path) && !above.has(path))
        await rm(path, { recursive: true, force: true });
    }
  }
}

/** restore --delta is for a stopped server: refuses when postmaster.pid names a live process. */
export async function refuseRunningServer(pgdata: string): Promise<void> {
  const pid = await livePostmasterPid(pgdata);
  if (pid !== undefined)
    throw new RefusedError(
      `${pgdata}/postmaster.pid names process ${pid}, which is running; nothing was written`,
      `stop the server first (pg_ctl -D ${pgdata} stop): restore --delta rewrites its files`,
    );
}

/**
 * restore --delta removes pg_wal's contents, as a restore into an empty directory has
 * none: refused while it holds segments the server has not archived yet (.ready), which
 * may be the only copy of that WAL.
 */
export async function refuseUnarchivedWal(pgdata: string): Promise<void> {
  const status = join(pgdata, "pg_wal", "archive_status");
  const names = await readdir(status).catch(() => [] as string[]);
  const ready = names.filter((n) => n.endsWith(".ready")).sort();
  if (ready.length > 0)
    throw new RefusedError(
      `${status} lists ${ready.length} WAL files not archived yet (first: ${ready[0]?.replace(/\.ready$/, "")}); nothing was written`,
      "they may be the only copy of that WAL: start the server with archiving on until they are archived, or move them away yourself if they are not needed",
    );
}
