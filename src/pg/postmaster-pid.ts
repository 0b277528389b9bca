/**
 * The server that runs on a data directory, as its postmaster.pid says: the pid on the
 * file's first line, if that process is alive (EPERM: alive, another user's). A stale file
 * (the server was killed) names a dead pid, or, after a reboot, maybe another process:
 * callers that must not act on a running server take any live pid as the server.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export async function livePostmasterPid(pgdata: string): Promise<number | undefined> {
  const text = await readFile(join(pgdata, "postmaster.pid"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  if (!(pid > 0)) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}
