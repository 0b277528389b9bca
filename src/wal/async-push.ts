/**
 * wal-push's side of the asynchronous archiver (archiver.ts): exit 0 for a file only once
 * the archiver recorded it as stored and verified (its ok marker), starting the archiver
 * when none runs for this data directory and these settings.
 *
 *   0. The archiver answers only for what PostgreSQL handed over: pg_wal/<name> of this
 *      data directory, marked .ready, and only to the user the spool belongs to. Anything
 *      else (a file elsewhere, one already .done, a call by root) the caller stores itself.
 *   1. ok marker present, written under these settings, not older than the file: done.
 *   2. Otherwise make sure an archiver with these settings runs (one with other settings
 *      is stopped first: its markers mean nothing for ours), say that we wait (want
 *      marker), poke it, and wait for the ok marker, or for a failure it records for
 *      this file (reported with its own exit code), or for --archive-timeout.
 */
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Config } from "../config/load.js";
import { type ExitCodeName, PghaError, StorageError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ArchiverStatus } from "./archiver.js";
import {
  ensureDir,
  holderAlive,
  type LockRecord,
  readLock,
  readText,
  removeFile,
  spoolDir,
  spoolRefusal,
  storeIdentity,
  writeAtomically,
} from "./spool.js";

export interface AsyncPushDeps {
  /** The data directory (PostgreSQL runs archive_command in it). */
  pgdata: string;
  config: Config;
  /** This call's id (spool.ts callId): recorded for bin/pgha's shell fast path. */
  callId: string;
  /** This process's uid (process.getuid()); undefined: no check. */
  uid?: number | undefined;
  log: Logger;
  /** Starts an archiver in the background with this call's settings; false if it cannot. */
  startArchiver: () => boolean;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** "archived": stored and verified; otherwise the caller stores the file itself, and why. */
export type AsyncPushResult = "archived" | "no-archiver" | { bypass: string };

/** How often a waiting wal-push looks for its marker. */
const POLL_MS = 10;

export async function pushThroughArchiver(
  deps: AsyncPushDeps,
  path: string,
): Promise<AsyncPushResult> {
  const name = basename(path);
  const refused = await archiverRefusal(deps.pgdata, path, deps.uid);
  if (refused !== undefined) return { bypass: refused };
  const spool = spoolDir(deps.pgdata, "archive");
  const identity = storeIdentity(deps.config);
  const ours = async () => (await readText(join(spool, "config"))) === identity;
  // The settings are read again after the marker: one written under others is not ours.
  if ((await ours()) && (await markerCovers(spool, name, path)) && (await ours())) {
    await recordCallId(spool, deps.callId);
    return "archived";
  }

  await ensureDir(join(spool, "want"));
  let holder = await readLock(spool);
  if (holder && holderAlive(holder) && !(await ours())) {
    deps.log.info(`the running archiver (pid ${holder.pid}) has other settings: restarting it`);
    await stopHolder(deps, spool, holder);
    holder = undefined;
  }
  await removeFile(join(spool, "error", name));
  await writeAtomically(join(spool, "want", name), "");
  let started = deps.now();
  if (!holder || !holderAlive(holder)) {
    if (!deps.startArchiver()) {
      deps.log.warn("the archiver could not be started: storing the file in this process");
      return "no-archiver";
    }
    started = deps.now();
  }
  // A running archiver sees the want marker through its watch on want/ (no signal: a PID
  // can be reused, and SIGUSR1 would open the inspector of a Node.js process without a handler).
  await warnAboutBacklog(deps, spool);

  const deadline = deps.now() + deps.config.archiveTimeoutMs;
  let restarts = 0;
  for (let tick = 0; ; tick++) {
    if (await markerCovers(spool, name, path)) {
      if (await ours()) {
        await removeFile(join(spool, "want", name));
        await recordCallId(spool, deps.callId);
        return "archived";
      }
    }
    const failure = await readText(join(spool, "error", name));
    if (failure !== undefined) {
      await removeFile(join(spool, "want", name));
      throw failureError(name, failure);
    }
    if (deps.now() >= deadline) {
      await removeFile(join(spool, "want", name));
      throw new StorageError(
        `${name} was not stored by the archiver within ${Math.round(deps.config.archiveTimeoutMs / 1000)}s`,
        {
          transient: true,
          hint: `PostgreSQL retries; see ${join(spool, "archiver.log")} and ${join(spool, "status.json")} (backlog), or set --archive-async false to archive in this process`,
        },
      );
    }
    // A dead archiver (killed, crashed) is started again: its work is never lost, only redone.
    if (tick % 50 === 49 && deps.now() - started > 2000) {
      const now = await readLock(spool);
      if (!now || !holderAlive(now)) {
        if (restarts++ >= 3 || !deps.startArchiver()) return "no-archiver";
        started = deps.now();
      }
    }
    await deps.sleep(POLL_MS);
  }
}

/**
 * Why the archiver cannot answer for path (step 0 above), or undefined when it can. It
 * archives pg_wal/<name> while PostgreSQL has it .ready; a marker for that name says
 * nothing about another file of the same name, and it never looks at one that is not .ready.
 */
export async function archiverRefusal(
  pgdata: string,
  path: string,
  uid: number | undefined,
): Promise<string | undefined> {
  const refused = await spoolRefusal(pgdata, uid);
  if (refused !== undefined) return refused;
  const name = basename(path);
  const own = join(pgdata, "pg_wal", name);
  const [file, handed] = await Promise.all([path, own].map((p) => stat(p).catch(() => undefined)));
  if (!file || !handed || file.ino !== handed.ino || file.dev !== handed.dev) {
    return `${path} is not ${own}`;
  }
  const ready = await stat(join(pgdata, "pg_wal", "archive_status", `${name}.ready`)).catch(
    () => undefined,
  );
  return ready ? undefined : `PostgreSQL has not marked ${name} .ready in ${pgdata}`;
}

/** An ok marker for name that is not older than the file it stands for. */
async function markerCovers(spool: string, name: string, path: string): Promise<boolean> {
  const marker = await stat(join(spool, "ok", name)).catch(() => undefined);
  if (!marker) return false;
  const file = await stat(path).catch(() => undefined);
  return file !== undefined && file.mtimeMs <= marker.mtimeMs;
}

/** Records the id of a call that checked the spool's settings: bin/pgha's fast path trusts it. */
export async function recordCallId(spool: string, id: string): Promise<void> {
  if (id.includes("\n")) return; // not representable on the id line: no fast path
  // Only an optimization: a spool that cannot be read or written costs the fast path.
  if ((await readText(join(spool, "id")).catch(() => undefined)) === `${id}\n`) return;
  await writeAtomically(join(spool, "id"), `${id}\n`).catch(() => undefined);
}

async function stopHolder(deps: AsyncPushDeps, spool: string, holder: LockRecord): Promise<void> {
  try {
    process.kill(holder.pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = deps.now() + 10_000;
  while (deps.now() < deadline) {
    const now = await readLock(spool);
    if (!now || now.pid !== holder.pid || !holderAlive(now)) return;
    await deps.sleep(50);
  }
  try {
    process.kill(holder.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

async function warnAboutBacklog(deps: AsyncPushDeps, spool: string): Promise<void> {
  const text = await readText(join(spool, "status.json"));
  if (!text) return;
  try {
    const status = JSON.parse(text) as ArchiverStatus;
    if (status.overLimit) {
      deps.log.warn(
        `archive backlog: ${status.backlog.files} files (${Math.round(status.backlog.bytes / 2 ** 20)} MiB) waiting, over the ${Math.round(status.backlogWarnBytes / 2 ** 20)} MiB limit (--archive-backlog-warn); pg_wal grows until they are stored`,
      );
    }
  } catch {
    // A status being rewritten: next time.
  }
}

function failureError(name: string, text: string): PghaError {
  try {
    const wire = JSON.parse(text) as { exit?: ExitCodeName; message: string; hint?: string };
    return new PghaError(wire.exit ?? "internal", `archiving ${name} failed: ${wire.message}`, {
      ...(wire.hint ? { hint: wire.hint } : {}),
    });
  } catch {
    return new StorageError(`archiving ${name} failed (unreadable error record)`, {
      transient: true,
    });
  }
}
