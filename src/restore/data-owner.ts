/**
 * Who a restored data directory belongs to. PostgreSQL refuses to start on a data
 * directory its own user does not own, and refuses to run as root. So a restore or a
 * standby run as root gives what it wrote to the owner of the target: the data directory
 * when it exists already (empty), else its nearest existing ancestor (the parent an
 * operator prepared for the PostgreSQL user). If that is root too, it refuses before
 * anything is downloaded. Run as any other user, files belong to that user, as always.
 */
import { lchown, lstat, readdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { describeSystemError, LocalIoError, UsageError } from "../errors.js";
import { isErrno } from "../local-files.js";

export interface DataOwner {
  uid: number;
  gid: number;
}

/**
 * The owner to give a restored data directory, or undefined to leave files as written
 * (not run as root). `euid`: this process's effective uid (process.geteuid()).
 */
export async function decideDataOwner(
  pgdata: string,
  euid: number | undefined,
): Promise<DataOwner | undefined> {
  if (euid !== 0) return undefined;
  let at = resolve(pgdata);
  for (;;) {
    try {
      const info = await stat(at);
      if (info.uid === 0) {
        throw new UsageError(
          `${at} belongs to root: a data directory restored there as root would belong to root, and PostgreSQL does not run as root`,
          `give the data directory (or its parent) to the PostgreSQL user first, e.g. install -d -o postgres -g postgres -m 700 ${resolve(pgdata)}, or run pgha as that user`,
        );
      }
      return { uid: info.uid, gid: info.gid };
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const parent = dirname(at);
      if (!isErrno(error, "ENOENT") || parent === at) {
        throw new LocalIoError(`cannot read ${at}: ${describeSystemError(error)}`, {
          cause: error,
        });
      }
      at = parent;
    }
  }
}

/** Gives a directory tree to owner; symbolic links themselves are changed, not followed. */
export async function chownTree(dir: string, owner: DataOwner): Promise<void> {
  await lchown(dir, owner.uid, owner.gid);
  if (!(await lstat(dir)).isDirectory()) return;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, owner);
    else await lchown(path, owner.uid, owner.gid);
  }
}
