/**
 * restore --delta removes whatever in the target the backup does not have. Pointed at the
 * wrong directory, that is a deletion of someone else's files, so before anything is
 * read or written the target must be empty, or be a PostgreSQL data directory (it has
 * PG_VERSION, as pgBackRest's delta asks for) of the backup's own cluster (pg_control's
 * system identifier, when pg_control is there: a delta restore that failed removed it).
 */
import { readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { RESTORE_MARKER } from "../backup/pg-control-last.js";
import type { TablespaceTarget } from "../backup/tablespace-targets.js";
import {
  ClusterMismatchError,
  describeSystemError,
  LocalIoError,
  RefusedError,
} from "../errors.js";

/** pg_control's system identifier: its first 8 bytes, a uint64 in the server's byte order. */
export function systemIdentifierOf(pgControl: Buffer): string | undefined {
  return pgControl.length >= 8 ? pgControl.readBigUInt64LE(0).toString() : undefined;
}

/**
 * What a directory of the target holds: nothing when it is missing. Unreadable: nothing
 * can be told, so nothing is done.
 */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new LocalIoError(`cannot read ${dir}: ${describeSystemError(error)}`, {
      hint: "restore --delta reads the target first: give a directory this user can read",
    });
  }
}

export async function refuseForeignTarget(
  pgdata: string,
  backup: { cluster: string; systemIdentifier: string },
): Promise<void> {
  // Missing: a restore into a new directory.
  const names = await namesIn(pgdata);
  if (names.length === 0) return;
  // A pgha restore that did not finish (killed) may have no PG_VERSION yet: restore --delta
  // finishes it (the cluster check below still applies).
  if (!names.includes("PG_VERSION") && !names.includes(RESTORE_MARKER))
    throw new RefusedError(
      `${pgdata} is not empty and has no PG_VERSION: it does not look like a PostgreSQL data directory; nothing was written`,
      "restore --delta deletes every file the backup does not have: check the path, or restore into an empty directory without --delta",
    );
  const control = await readFile(join(pgdata, "global", "pg_control")).catch(() => undefined);
  const found = control && systemIdentifierOf(control);
  // All zeros: a pg_control made at its size by a restore killed before it was written
  // (pgha before pg_control was written last), as good as none.
  if (found !== undefined && found !== "0" && found !== backup.systemIdentifier)
    throw new ClusterMismatchError(
      `${pgdata} belongs to another cluster (system identifier ${found}; the backup is of cluster '${backup.cluster}', system identifier ${backup.systemIdentifier}); nothing was written`,
      "restore --delta is for a copy of the same cluster: check the path or --cluster, or empty the directory and restore without --delta",
    );
}

/**
 * restore --delta's tablespace locations: where the target's own links (pg_tblspc/<oid>)
 * point, for each tablespace --tablespace-map does not name. A copy restored with its
 * tablespaces elsewhere is rewritten there, not at the original cluster's locations.
 *
 * A copy made with `cp -a` of the data directory keeps links to the original's own
 * tablespaces: one that the data directory the backup was taken from, still on this host
 * and not the target, links to as well is that cluster's (maybe running), and is refused
 * unless --tablespace-map names it.
 */
export async function deltaTablespaceMap(
  pgdata: string,
  backup: { tablespaces: readonly { oid: string; name: string }[]; dataDirectory?: string },
  remap: ReadonlyMap<string, string>,
): Promise<Map<string, string>> {
  const out = new Map(remap);
  for (const ts of backup.tablespaces) {
    if (remap.has(ts.oid) || remap.has(ts.name)) continue;
    const link = join(pgdata, "pg_tblspc", String(ts.oid));
    const target = await readlink(link).catch(() => undefined);
    if (target === undefined) continue;
    const there = await linkTarget(link, target);
    const original = await sharedWithOriginal(pgdata, backup.dataDirectory, ts.oid, there);
    if (original !== undefined)
      throw new RefusedError(
        `tablespace ${ts.name} (${ts.oid}): ${pgdata}'s pg_tblspc/${ts.oid} points to ${there}, which ${original}, the data directory the backup was taken from, links to as well: restore --delta would rewrite that cluster's tablespace; nothing was written`,
        `give this copy its own: --tablespace-map ${ts.name}=DIR (an empty directory, or one only this copy uses); if ${there} is this copy's alone, name it: --tablespace-map ${ts.name}=${there}`,
      );
    out.set(String(ts.oid), there);
  }
  return out;
}

/**
 * Where a tablespace link leads: where the kernel resolves it (a relative link through a
 * linked pg_tblspc too); a link to nothing yet, where it says.
 */
async function linkTarget(link: string, target: string): Promise<string> {
  return realpath(link).catch(() => resolve(dirname(link), target));
}

/**
 * The backup's original data directory (resolved) when it is on this host, is not
 * `pgdata` (not the same directory, by device and inode: a bind mount of it is it), and
 * its own pg_tblspc/<oid> leads to `location` too.
 */
async function sharedWithOriginal(
  pgdata: string,
  dataDirectory: string | undefined,
  oid: string,
  location: string,
): Promise<string | undefined> {
  if (dataDirectory === undefined) return undefined;
  const original = await realpath(dataDirectory).catch(() => undefined);
  if (original === undefined) return undefined;
  const [theirs, ours] = await Promise.all([
    stat(original).catch(() => undefined),
    stat(pgdata).catch(() => undefined),
  ]);
  if (!theirs || (ours && theirs.dev === ours.dev && theirs.ino === ours.ino)) return undefined;
  const link = join(original, "pg_tblspc", oid);
  const target = await readlink(link).catch(() => undefined);
  if (target === undefined) return undefined;
  return (await linkTarget(link, target)) === location ? original : undefined;
}

/**
 * restore --delta rewrites a tablespace location that holds the backup's version
 * directory (PG_15_...) only where the target's own link points: anywhere else it is
 * another cluster's tablespace (the original one's, still in use), which the delta would
 * rewrite under it. An empty or missing version directory is written as by a restore.
 */
export async function refuseForeignTablespaces(
  pgdata: string,
  targets: readonly TablespaceTarget[],
  version: string,
): Promise<void> {
  if (version === "") return;
  for (const ts of targets) {
    const dir = join(ts.location, version);
    if ((await namesIn(dir)).length === 0) continue;
    const own = await realpath(join(pgdata, "pg_tblspc", ts.oid)).catch(() => undefined);
    const location = await realpath(ts.location).catch(() => ts.location);
    if (own === location) continue;
    throw new RefusedError(
      `tablespace ${ts.name} (${ts.oid}) would be rewritten in ${dir}, which is not empty and is not ${pgdata}'s (its pg_tblspc/${ts.oid} does not point to ${ts.location}); nothing was written`,
      `it may be another cluster's tablespace in use: give it another directory with --tablespace-map ${ts.name}=DIR, or empty ${dir} first`,
    );
  }
}
