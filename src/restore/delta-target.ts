/**
 * restore --delta removes whatever in the target the backup does not have. Pointed at the
 * wrong directory, that is a deletion of someone else's files, so before anything is
 * read or written the target must be empty, or be a PostgreSQL data directory (it has
 * PG_VERSION, as pgBackRest's delta asks for) of the backup's own cluster (pg_control's
 * system identifier, when pg_control is there: a delta restore that failed removed it).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
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

export async function refuseForeignTarget(
  pgdata: string,
  backup: { cluster: string; systemIdentifier: string },
): Promise<void> {
  let names: string[];
  try {
    names = await readdir(pgdata);
  } catch (error) {
    // Missing: a restore into a new directory. Unreadable: nothing can be told, so nothing done.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new LocalIoError(`cannot read ${pgdata}: ${describeSystemError(error)}`, {
      hint: "restore --delta reads the target first: give a directory this user can read",
    });
  }
  if (names.length === 0) return;
  if (!names.includes("PG_VERSION"))
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
