/**
 * Lists what goes into one tablespace's tar: directories and regular files below a root,
 * minus the exclusions, in a stable order (parents before children, names sorted).
 * Files that vanish while the walk runs are simply not listed (WAL replay recreates them).
 */
import { lstatSync, type Stats } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { describeSystemError, LocalIoError } from "../errors.js";
import {
  excludedRelationFiles,
  isDatabaseDirectory,
  isEmptiedDirectory,
  isExcluded,
} from "./exclude.js";

export interface WalkEntry {
  /** Relative path inside the tar, '/'-separated. */
  path: string;
  type: "directory" | "file" | "symlink";
  size: number;
  mode: number;
  mtime: Date;
  linkTarget?: string;
}

export interface WalkOptions {
  /** The data directory (applies its top-level rules) or a tablespace. */
  isDataDirectory: boolean;
  /** Only this first-level subdirectory is walked (a tablespace's PG_15_<catversion>). */
  onlyTopDirectory?: string;
}

export async function walkTree(root: string, options: WalkOptions): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  await walkDir(root, "", options, out);
  return out;
}

/** Entries looked at, by every walk: when to give the event loop a turn. */
let visited = 0;

async function walkDir(
  root: string,
  rel: string,
  options: WalkOptions,
  out: WalkEntry[],
): Promise<void> {
  // Names only: each entry is lstat'ed below anyway, and where the file system does not
  // give types a typed listing lstat's each entry itself and fails whole on one that
  // vanished (normal while the server runs), which would leave the directory out.
  let names: string[];
  try {
    names = await readdir(rel === "" ? root : join(root, rel));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new LocalIoError(`cannot read ${join(root, rel)}: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  names.sort();
  const skipRelations = isDatabaseDirectory(rel, options.isDataDirectory)
    ? excludedRelationFiles(names)
    : new Set<string>();
  for (const name of names) {
    const path = rel === "" ? name : `${rel}/${name}`;
    if (rel === "" && options.onlyTopDirectory !== undefined && name !== options.onlyTopDirectory)
      continue;
    if (isExcluded(path, options.isDataDirectory) || skipRelations.has(name)) continue;
    // A turn for the event loop (the lock's heartbeat, signals) every few hundred entries:
    // the stat is synchronous, as an awaited one (a round trip through libuv's threads)
    // made a walk of 100,000 files take seconds.
    if (++visited % 512 === 0) await new Promise((resolve) => setImmediate(resolve));
    let stats: Stats;
    try {
      stats = lstatSync(join(root, path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new LocalIoError(`cannot stat ${join(root, path)}: ${describeSystemError(error)}`, {
        cause: error,
      });
    }
    // Entries are object literals of one shape (no spread): a spread copy takes twice
    // the memory, and a walk of 100,000 files keeps 100,000 of them until the backup ends.
    const mode = stats.mode & 0o7777;
    const mtime = stats.mtime;
    const emptied = options.isDataDirectory && isEmptiedDirectory(path);
    if (stats.isDirectory() || (emptied && stats.isSymbolicLink())) {
      // pg_wal may be a symlink to another disk: it is restored as an empty directory.
      out.push({
        path,
        type: "directory",
        size: 0,
        mode: stats.isDirectory() ? mode : 0o700,
        mtime,
      });
      if (emptied) {
        if (path === "pg_wal")
          out.push({
            path: "pg_wal/archive_status",
            type: "directory",
            size: 0,
            mode: 0o700,
            mtime,
          });
        continue;
      }
      // Tablespace links are restored from tablespace_map, not from the tar.
      if (options.isDataDirectory && path === "pg_tblspc") continue;
      await walkDir(root, path, options, out);
    } else if (stats.isFile()) {
      out.push({ path, type: "file", size: stats.size, mode, mtime });
    } else if (stats.isSymbolicLink()) {
      const linkTarget = await readlink(join(root, path)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined; // vanished since the lstat
        throw new LocalIoError(
          `cannot read link ${join(root, path)}: ${describeSystemError(error)}`,
          {
            cause: error,
          },
        );
      });
      if (linkTarget !== undefined)
        out.push({ path, type: "symlink", size: 0, mode, mtime, linkTarget });
    }
    // Sockets, FIFOs and devices do not belong in a data directory and are left out.
  }
}
