/**
 * Is the process a lock names still alive? For locks that record who holds them (the
 * spool lock of a data directory, the repository lock): a holder killed with -9 never
 * removes its lock, and a lock whose process is gone is taken over at once instead of
 * waiting for it to expire. Only a holder on this host (and in this PID namespace, where
 * /proc tells) can be judged; a reused PID is told apart by the process's start time.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { isErrno } from "./local-files.js";

/**
 * /proc/<pid>/stat's fields from the 3rd (state) on: "(comm)" before them may hold
 * spaces. Undefined where /proc does not tell (gone, or no /proc).
 */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Which boot and process start time `pid` has, where /proc tells; undefined elsewhere. */
export function processStart(pid: number): string | undefined {
  const starttime = statFields(pid)?.[19]; // the 22nd field
  if (!starttime) return undefined;
  try {
    return `${readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()}/${starttime}`;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` runs: alive (EPERM: another user's) and not a zombie, where /proc tells.
 * A killed process stays a zombie until its parent reaps it (seconds, where that parent
 * is slow), and runs nothing.
 */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return isErrno(error, "EPERM");
  }
  return statFields(pid)?.[0] !== "Z";
}

/**
 * This process's PID namespace ("pid:[4026531836]"), where /proc tells: two containers
 * may share a host name (and a repository) but each has its own PIDs.
 */
export function pidNamespace(): string | undefined {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
}

export interface ProcessHolder {
  pid: number;
  host: string;
  /** processStart(pid) when the holder took the lock. */
  start?: string;
  /** pidNamespace() of the holder; compared when both sides know it. */
  pidNamespace?: string;
  /** The pgha command in the holder's argv, checked where /proc has no start time. */
  command?: string;
}

/** The fields that name this process as a lock's holder (start and namespace where /proc tells). */
export function thisProcess(): Pick<ProcessHolder, "host" | "pid" | "start" | "pidNamespace"> {
  const start = processStart(process.pid);
  const namespace = pidNamespace();
  return {
    host: hostname(),
    pid: process.pid,
    ...(start !== undefined ? { start } : {}),
    ...(namespace !== undefined ? { pidNamespace: namespace } : {}),
  };
}

/**
 * Whether the process a lock names is still that process: alive, and (where /proc tells)
 * started when the lock's holder started, or else at least running the pgha command the
 * lock was taken for, so that a reused PID (after a kill -9 or a reboot) neither keeps a
 * dead process's lock nor gets a signal meant for it. A holder on another host, or in
 * another PID namespace, is alive as far as this process can tell.
 */
export function holderAlive(holder: ProcessHolder): boolean {
  if (holder.host !== hostname()) return true; // another host's lock: not ours to judge
  if (holder.pidNamespace !== undefined) {
    const ours = pidNamespace();
    if (ours === undefined || ours !== holder.pidNamespace) return true;
  }
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if (isErrno(error, "ESRCH")) return false;
  }
  if (holder.start !== undefined) {
    const start = processStart(holder.pid);
    if (start !== undefined) return start === holder.start;
  }
  if (holder.command === undefined) return true;
  try {
    const argv = readFileSync(`/proc/${holder.pid}/cmdline`, "utf8").split("\0");
    return argv.includes(holder.command);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}
