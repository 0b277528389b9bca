/**
 * One restore at a time into a data directory: two at once (a --delta, a retry started
 * while the first still runs) would each rewrite, and on failure clean up, the other's
 * files. The lock is a file beside the directory, `.<name>.pgha-restore` in its parent
 * (not inside: an empty target must stay empty, and --delta removes what the backup does
 * not have), made only if absent, naming the process. One whose process is gone (kill -9)
 * is taken over, with a warning. Where the parent does not exist yet or cannot be written,
 * there is no lock (and no other restore can have made one there).
 */
import { open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { RefusedError } from "../errors.js";
import { isErrno } from "../local-files.js";
import { holderAlive, type ProcessHolder, pidNamespace, processStart } from "../local-process.js";
import type { Logger } from "../log.js";

export function restoreLockPath(pgdata: string): string {
  return join(dirname(pgdata), `.${basename(pgdata)}.pgha-restore`);
}

/** Takes the lock of `pgdata`; resolves to its release (which never throws). */
export async function lockRestoreTarget(pgdata: string, log: Logger): Promise<() => Promise<void>> {
  const path = restoreLockPath(pgdata);
  const holder: ProcessHolder = {
    pid: process.pid,
    host: hostname(),
    command: "restore",
    ...optional("start", processStart(process.pid)),
    ...optional("pidNamespace", pidNamespace()),
  };
  const none = async () => undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, "wx", 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(holder)}\n`);
      } finally {
        await handle.close();
      }
      return () => rm(path, { force: true }).catch(() => undefined);
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "EACCES") || isErrno(error, "EROFS")) {
        log.debug(`no restore lock beside ${pgdata}: ${(error as Error).message}`);
        return none;
      }
      if (!isErrno(error, "EEXIST") || attempt > 0) throw error;
    }
    const other = await readHolder(path);
    if (other && holderAlive(other))
      throw new RefusedError(
        `another pgha restore (process ${other.pid} on ${other.host}) is writing into ${pgdata}; nothing was written`,
        `wait for it to end; ${path} is its lock (a lock whose process is gone is taken over)`,
      );
    log.warn(
      `taking over the restore lock ${path}${other ? ` of process ${other.pid} on ${other.host}, which is gone` : " (unreadable)"}: that restore did not finish, and this one rewrites the directory`,
    );
    await rm(path, { force: true });
  }
}

async function readHolder(path: string): Promise<ProcessHolder | undefined> {
  try {
    const record = JSON.parse(await readFile(path, "utf8")) as ProcessHolder;
    return typeof record.pid === "number" && typeof record.host === "string" ? record : undefined;
  } catch {
    return undefined;
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
