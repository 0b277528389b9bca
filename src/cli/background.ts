/**
 * Starting pgha's background processes (the archiver, the prefetcher) from a wal-push or
 * wal-fetch call: the same launcher and settings flags as the call, detached, logging to
 * a file in the spool (rotated at 10 MiB), with the call's id for bin/pgha's fast path.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../config/load.js";
import { UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import { adoptSpool, callId, STARTING_FILE, spoolDir, spoolRefusal } from "../wal/spool.js";

const LOG_LIMIT = 10 << 20;

/** The flags of this call: argv after the command word, without the positional arguments. */
export function callFlags(arity: number): string[] {
  return process.argv.slice(3, process.argv.length - arity);
}

/** This call's id (spool.ts): the command word and its flags, the environment, the config text. */
export function thisCallId(arity: number, configText: string | undefined): string {
  return callId(process.argv.slice(2, process.argv.length - arity), process.env, configText);
}

export interface BackgroundStart {
  command: "archiver" | "prefetcher";
  /** The spool directory: its log file goes there. */
  spool: string;
  pgdata: string;
  flags: string[];
  callId: string;
}

/** Starts the process and returns at once; false when it could not be started. */
export function startInBackground(start: BackgroundStart): boolean {
  const log = join(start.spool, `${start.command}.log`);
  try {
    if (statSync(log).size > LOG_LIMIT) renameSync(log, `${log}.1`);
  } catch {
    // no log yet
  }
  let fd: number;
  try {
    fd = openSync(log, "a", 0o600);
  } catch {
    return false;
  }
  try {
    const child = spawn(
      process.execPath,
      [
        process.argv[1] ?? "pgha",
        start.command,
        ...start.flags,
        "--pgdata",
        start.pgdata,
        "--idle-exit",
        "60s",
      ],
      {
        cwd: start.pgdata,
        detached: true,
        stdio: ["ignore", fd, fd],
        env: { ...process.env, PGHA_SPOOL_CALL_ID: start.callId },
      },
    );
    child.on("error", () => undefined);
    child.unref();
    if (child.pid === undefined) return false;
    // Until it takes the spool's lock, this names it for stopSpoolProcesses.
    try {
      writeFileSync(join(start.spool, STARTING_FILE), `${child.pid}\n`, { mode: 0o600 });
    } catch {
      // the process runs all the same; only an early stop could miss it
    }
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * The start of `pgha archiver` / `pgha prefetcher`: the data directory (--pgdata, else the
 * working directory) and its spool, taken for this process. Refuses a data directory that
 * is not the caller's; undefined when another live process holds the spool.
 */
export async function takeSpoolFor(
  command: "archiver" | "prefetcher",
  config: Config,
  log: Logger,
): Promise<{ pgdata: string; spool: string } | undefined> {
  const pgdata = resolve(config.pgdata ?? ".");
  const spool = spoolDir(pgdata, command === "archiver" ? "archive" : "prefetch");
  const refused = await spoolRefusal(pgdata, process.getuid?.());
  if (refused !== undefined) {
    throw new UsageError(
      `cannot run for ${pgdata}: ${refused}`,
      "run it as the PostgreSQL server user (the owner of the data directory), with --pgdata",
    );
  }
  if (!(await adoptSpool(spool, command, config, process.env.PGHA_SPOOL_CALL_ID))) {
    log.info(
      `${command === "archiver" ? "an archiver" : "a prefetcher"} already runs for ${pgdata}`,
    );
    return undefined;
  }
  return { pgdata, spool };
}
