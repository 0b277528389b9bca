/**
 * The server that runs on a data directory, as its postmaster.pid says: the pid on the
 * file's first line, if that process runs (processRuns: not gone, not a zombie). A stale file
 * (the server was killed) names a dead pid, or, after a reboot, maybe another process:
 * callers that must not act on a running server take any live pid as the server.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isErrno } from "../local-files.js";
import { processRuns } from "../local-process.js";

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
  return processRuns(pid) ? pid : undefined;
}

/** The live postmaster's pid, or undefined (none, or its file cannot be read). */
export async function livePostmasterPid(pgdata: string): Promise<number | undefined> {
  const state = await postmasterState(pgdata);
  return typeof state === "number" ? state : undefined;
}
