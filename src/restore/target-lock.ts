/**
 * One restore at a time into a data directory: two at once (a --delta, a retry started
 * while the first still runs) would each rewrite, and on failure clean up, the other's
 * files. The lock is a file beside the directory, `.<name>.pgha-restore` in its parent
 * (not inside: an empty target must stay empty, and --delta removes what the backup does
 * not have), or where the parent does not exist yet or cannot be written by this user, in
 * /tmp (`pgha-restore-<hash of the path>.lock`). A restore also refuses while the other
 * place names a live holder (root and postgres may not both write the parent).
 *
 * Each lock file appears whole (written under a private name, then linked into place),
 * names its process, and is taken over when that process is gone (kill -9): moved aside
 * under a private name first, so that of two restores taking over the same stale lock one
 * wins and the other is refused.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, readFile, realpath, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { LocalIoError, RefusedError } from "../errors.js";
import { isErrno } from "../local-files.js";
import { holderAlive, type ProcessHolder, thisProcess } from "../local-process.js";
import type { Logger } from "../log.js";

interface Holder extends ProcessHolder {
  /** Tells this lock file from another of the same process. */
  nonce: string;
}

/** The two places of the lock of `pgdata`: beside it, and the shared one. */
export async function restoreLockPaths(pgdata: string): Promise<[string, string]> {
  const absolute = resolve(pgdata);
  const parent = await realpath(dirname(absolute)).catch(() => dirname(absolute));
  const key = join(parent, basename(absolute));
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 16);
  const shared = existsSync("/tmp") ? "/tmp" : tmpdir();
  return [
    join(parent, `.${basename(key)}.pgha-restore`),
    join(shared, `pgha-restore-${hash}.lock`),
  ];
}

/** Takes the lock of `pgdata`; resolves to its release (which never throws). */
export async function lockRestoreTarget(pgdata: string, log: Logger): Promise<() => Promise<void>> {
  const holder: Holder = {
    ...thisProcess(),
    command: "restore",
    nonce: randomBytes(8).toString("hex"),
  };
  const places = await restoreLockPaths(pgdata);
  let mine: string | undefined;
  for (const place of places) {
    try {
      await take(place, holder, pgdata, log);
      mine = place;
      break;
    } catch (error) {
      if (!cannotWrite(error)) throw error;
      log.debug(`no restore lock at ${place}: ${(error as Error).message}`);
    }
  }
  if (mine === undefined)
    throw new LocalIoError(`cannot make the restore lock of ${pgdata} (${places.join(", ")})`, {
      hint: "pgha needs to write beside the data directory (its parent) or in /tmp",
    });
  const release = async () => {
    const found = await readHolder(mine);
    if (found?.nonce === holder.nonce) await rm(mine, { force: true }).catch(() => undefined);
  };
  for (const other of places) {
    if (other === mine) continue;
    const found = await readHolder(other);
    if (found && holderAlive(found)) {
      await release();
      throw refused(found, pgdata, other);
    }
  }
  return release;
}

async function take(path: string, holder: Holder, pgdata: string, log: Logger): Promise<void> {
  const own = `${path}.${holder.pid}.${holder.nonce}`;
  await writeFile(own, `${JSON.stringify(holder)}\n`, { flag: "wx", mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(own, path);
        return;
      } catch (error) {
        if (!isErrno(error, "EEXIST")) throw error;
      }
      const other = await readHolder(path);
      if (other && holderAlive(other)) throw refused(other, pgdata, path);
      // Gone (or unreadable: no pgha wrote it so): moved aside, then looked at again, so
      // that only the stale lock is removed, never one another restore just took.
      const aside = `${path}.stale.${holder.pid}.${holder.nonce}`;
      try {
        await rename(path, aside);
      } catch (error) {
        if (isErrno(error, "ENOENT")) continue; // another restore moved it first
        if (isErrno(error, "EPERM") || isErrno(error, "EACCES"))
          throw new RefusedError(
            `the restore lock ${path} of process ${other?.pid ?? "?"}, which is gone, cannot be removed by this user; nothing was written`,
            `that restore did not finish: remove ${path} (as its owner or root) and restore again`,
          );
        throw error;
      }
      const moved = await readHolder(aside);
      if (moved && moved.nonce !== other?.nonce) {
        await link(aside, path).catch(() => undefined);
        await rm(aside, { force: true });
        throw refused(moved, pgdata, path);
      }
      await rm(aside, { force: true });
      log.warn(
        `taking over the restore lock ${path}${other ? ` of process ${other.pid} on ${other.host}, which is gone` : " (unreadable)"}: that restore did not finish, and this one rewrites ${pgdata}`,
      );
    }
    const last = await readHolder(path);
    throw last ? refused(last, pgdata, path) : new RefusedError(`cannot take ${path}`);
  } finally {
    await rm(own, { force: true });
  }
}

function refused(other: Holder, pgdata: string, path: string): RefusedError {
  return new RefusedError(
    `another pgha restore (process ${other.pid} on ${other.host}) is writing into ${pgdata}; nothing was written`,
    `wait for it to end; ${path} is its lock (a lock whose process is gone is taken over)`,
  );
}

function cannotWrite(error: unknown): boolean {
  return ["ENOENT", "EACCES", "EPERM", "EROFS"].some((code) => isErrno(error, code));
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const record = JSON.parse(await readFile(path, "utf8")) as Holder;
    return typeof record.pid === "number" && typeof record.host === "string" ? record : undefined;
  } catch {
    return undefined;
  }
}
