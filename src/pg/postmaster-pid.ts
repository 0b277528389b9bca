/**
 * The server that runs on a data directory, as its postmaster.pid says: the pid on the
 * file's first line, if that process is alive (EPERM: alive, another user's). A stale file
 * (the server was killed) names a dead pid, or, after a reboot, maybe another process:
 * callers that must not act on a running server take any live pid as the server.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isErrno } from "../local-files.js";

/**
 * The live postmaster's pid; undefined when there is none (no file, no pid on it, or a
 * dead one); "unreadable" when the file is there but cannot be read (EACCES, EIO).
 */
export async function postmasterState(pgdata: string): Promise<number | undefined | "unreadable"> {
  let text: string;
  try {
    text = await readFile(join(pgdata, "postmaster.pid"), "utf8");
  } catch (error) {
    return isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR") ? undefined : "unreadable";
  }
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  if (!(pid > 0)) return undefined;
  return processAlive(pid) ? pid : undefined;
}

/** The live postmaster's pid, or undefined (none, or its file cannot be read). */
export async function livePostmasterPid(pgdata: string): Promise<number | undefined> {
  const state = await postmasterState(pgdata);
  return typeof state === "number" ? state : undefined;
}

/**
 * Whether `pid` is a live process (EPERM: alive, another user's). A zombie is not: a
 * killed postmaster stays one until its parent reaps it (seconds, where that parent is
 * slow), and it runs nothing.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return isErrno(error, "EPERM");
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: kill(0) is all there is to go by
  }
}
