/**
 * The spool: pgha's working directory for the asynchronous archiver and the restore
 * prefetcher, at pg_wal/.pgha in the data directory. It is inside pg_wal so that it is on
 * the file system PostgreSQL hands WAL over on (a prefetched segment is delivered by a
 * rename), and at a fixed place so that bin/pgha's shell fast path finds it without
 * reading any configuration. Base backups leave pg_wal's contents out, so it is never
 * backed up. Layout (each of "archive" and "prefetch"):
 *
 *   <kind>/lock          JSON {pid, host, startedAt}: the one process of this kind
 *   <kind>/pid           its PID alone (bin/pgha waits for a live process's results)
 *   <kind>/config        JSON: the resolved settings the process works with
 *   <kind>/id            one line: the command line and environment of the calls that may
 *                        use its results (callId; compared by bin/pgha's shell fast path)
 *   archive/ok/<name>    <name> is stored and verified (written by the archiver only then)
 *   archive/error/<name> JSON: the archiver's last failure to store <name>
 *   archive/want/<name>  a wal-push is waiting for <name>
 *   archive/status.json  the archiver's progress and backlog (status, metrics)
 *   prefetch/want        the last WAL name recovery asked for
 *   prefetch/window      the names the prefetcher is fetching or will fetch, one per line
 *   prefetch/<name>      a downloaded, verified, fsynced segment, renamed into place on request
 *
 * Nothing in the spool is the only copy of anything: an ok marker is written after the
 * repository holds the file, a prefetched file is a copy of an archived one. Losing the
 * spool costs work, never WAL.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Config, encryptionModeOf } from "../config/load.js";
import { OPTION_KEYS, OPTIONS } from "../config/options.js";
import { isErrno } from "../local-files.js";
import { holderAlive, type ProcessHolder, processStart } from "../local-process.js";

export type SpoolKind = "archive" | "prefetch";

export function spoolDir(pgdata: string, kind: SpoolKind): string {
  return join(pgdata, "pg_wal", ".pgha", kind);
}

/**
 * The environment that decides where WAL goes or comes from, besides the command line:
 * every setting's variable, the config file's, and the AWS region defaults. bin/pgha's
 * fast path lists the same names in the same order (a unit test keeps them equal).
 */
export const CALL_ID_ENV: readonly string[] = [
  "PGHA_CONFIG",
  ...OPTION_KEYS.map((key) => OPTIONS[key].env),
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
];

/**
 * The identity of a call as bin/pgha's shell fast path computes it: the arguments before
 * the positional ones (the command word included), the environment above, and the config
 * file's text (configIdPart), joined by '|'. Two calls with the same id resolve the same
 * settings. The text itself, not the file's modification time: a config file replaced by
 * one with an older time (cp -p, rsync -a, mv of a file written earlier, a clock step)
 * must not let results made under the old settings answer calls under the new ones.
 */
export function callId(
  argsBeforePositionals: readonly string[],
  env: Record<string, string | undefined>,
  configText: string | undefined,
): string {
  return ["pgha-1", ...argsBeforePositionals, "env", ...CALL_ID_ENV.map((name) => env[name] ?? "")]
    .join("|")
    .concat(configIdPart(configText));
}

/**
 * The config file's part of a call id, as bin/pgha reads the file line by line: "|cfg",
 * then '|' and each line (without its newline; a last line without one counts the same).
 */
export function configIdPart(text: string | undefined): string {
  if (text === undefined || text === "") return "|cfg";
  const lines = (text.endsWith("\n") ? text.slice(0, -1) : text).split("\n");
  return `|cfg|${lines.join("|")}`;
}

/** The resolved settings that decide where WAL is stored: results made under others are not ours. */
export function storeIdentity(config: Config): string {
  return JSON.stringify({
    repo: config.repo.url,
    cluster: config.cluster,
    compress: config.compress,
    s3:
      config.repo.kind === "s3"
        ? {
            endpoint: config.s3.endpoint ?? null,
            region: config.s3.region,
            forcePathStyle: config.s3.forcePathStyle,
            storageClass: config.s3.storageClass ?? null,
            sse: config.s3.sse ?? null,
            sseKmsKeyId: config.s3.sseKmsKeyId ?? null,
          }
        : null,
    // An archiver that encrypts to other recipients (or not at all) is not ours.
    encryption: config.encryption.recipients ?? null,
    // Passphrase mode, else the identity file that reads (keys mode), else none.
    encryptionMode:
      encryptionModeOf(config.encryption) === "passphrase"
        ? "passphrase"
        : (config.encryption.identityFile ?? null),
  });
}

/**
 * Why this process must leave the data directory's spool alone, or undefined when it may
 * use it. Only a data directory has one, and it is the server user's: a file another user
 * (root, by hand) leaves there locks archive_command or restore_command out (0600), and a
 * segment such a process prefetched is one PostgreSQL cannot open. `uid`: this process's
 * (process.getuid()), undefined where there are none.
 */
export async function spoolRefusal(
  pgdata: string,
  uid: number | undefined,
): Promise<string | undefined> {
  const wal = join(pgdata, "pg_wal");
  const info = await stat(wal).catch(() => undefined);
  if (!info?.isDirectory()) return `${pgdata} is not a data directory (it has no pg_wal)`;
  if (uid !== undefined && info.uid !== uid) {
    return `${wal} belongs to uid ${info.uid}, not to this process's uid ${uid}`;
  }
  return undefined;
}

/** Creates the directory (and its parents) for the spool; mode 0700: it is the server user's. */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * A file a write that died left in a spool directory: writeAtomically's temporary
 * (`<name>.tmp-<8 hex>`) or a download's (`.pgha-tmp-...`, fetch.ts). Nothing reads them.
 */
export function isWriteLeftover(name: string): boolean {
  return name.startsWith(".pgha-tmp-") || /\.tmp-[0-9a-f]{8}$/.test(name);
}

/** Writes a small file so that readers see the old or the new content, never a mix. */
export async function writeAtomically(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`; // isWriteLeftover knows it
  try {
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
    throw error;
  }
}

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((error: unknown) => {
    if (!isErrno(error, "ENOENT") && !isErrno(error, "ENOTDIR")) throw error;
  });
}

export interface LockRecord {
  pid: number;
  host: string;
  /** The pgha command holding it ("archiver", "prefetcher"), as in its argv. */
  command: string;
  startedAt: string;
  /** The holder's boot and process start time (/proc), which a reused PID does not share. */
  start?: string;
}

/** Whether a spool lock's process is still the one that took it (local-process.ts). */
export { holderAlive, processStart } from "../local-process.js";

/**
 * Stops the archiver and the prefetcher of a data directory (those its spool locks name and
 * that are still theirs), waiting up to `graceMs` for each before SIGKILL: for whoever is
 * about to remove the directory (a drill's scratch copy), so that nothing writes into it.
 * One a wal-push or wal-fetch started that is still loading holds no lock yet: the
 * `starting` file its starter wrote names it (checked against its command line).
 */
export async function stopSpoolProcesses(pgdata: string, graceMs = 5000): Promise<void> {
  for (const kind of ["archive", "prefetch"] as const) {
    const dir = spoolDir(pgdata, kind);
    const holder = await readLock(dir).catch(() => undefined);
    if (holder && holder.host === hostname()) await stopHolder(holder, graceMs);
    const starting = Number((await readText(join(dir, STARTING_FILE)))?.trim());
    if (Number.isSafeInteger(starting) && starting > 0) {
      const command = kind === "archive" ? "archiver" : "prefetcher";
      if (startedFor(starting, command, pgdata))
        await stopHolder({ pid: starting, host: hostname(), command }, graceMs);
    }
  }
}

/** The file in a spool naming the process a wal-push or wal-fetch just started for it. */
export const STARTING_FILE = "starting";

/** Whether `pid` runs `pgha <command> ... --pgdata <pgdata>` (as startInBackground starts it). */
function startedFor(pid: number, command: string, pgdata: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const at = argv.indexOf("--pgdata");
    return argv.includes(command) && at !== -1 && argv[at + 1] === pgdata;
  } catch {
    return false; // gone, or no /proc: nothing to judge by
  }
}

async function stopHolder(holder: LockRecord | ProcessHolder, graceMs: number): Promise<void> {
  if (!holderAlive(holder)) return;
  try {
    process.kill(holder.pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (holderAlive(holder) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (holderAlive(holder)) {
    try {
      process.kill(holder.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

export async function readLock(dir: string): Promise<LockRecord | undefined> {
  const text = await readText(join(dir, "lock"));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LockRecord;
  } catch {
    return undefined;
  }
}

/**
 * Takes the spool lock for this process, or returns false when a live process holds it.
 * A lock whose holder is dead is taken over (the rename makes the takeover atomic:
 * of two takers, the one whose record is read back holds it).
 */
export async function takeLock(dir: string, command: string): Promise<boolean> {
  const path = join(dir, "lock");
  const record: LockRecord = {
    pid: process.pid,
    host: hostname(),
    command,
    startedAt: new Date().toISOString(),
  };
  const start = processStart(process.pid);
  if (start !== undefined) record.start = start;
  const text = JSON.stringify(record);
  try {
    const handle = await open(path, "wx", 0o600);
    await handle.writeFile(text);
    await handle.close();
    return true;
  } catch (error) {
    if (!isErrno(error, "EEXIST")) throw error;
  }
  const held = await readLock(dir);
  if (held && holderAlive(held)) return false;
  // Stale: replace it, then check that ours is the record that stayed.
  await writeAtomically(path, text);
  const now = await readLock(dir);
  return now?.pid === process.pid && now.startedAt === record.startedAt;
}

/**
 * Whether the spool lock still names this process (sync: checked on every loop). It does
 * not once someone removed or replaced it and another process took the spool.
 */
export function holdsLock(dir: string): boolean {
  try {
    const held = JSON.parse(readFileSync(join(dir, "lock"), "utf8")) as LockRecord;
    return held.pid === process.pid && held.host === hostname();
  } catch {
    return false;
  }
}

export async function releaseLock(dir: string): Promise<void> {
  const held = await readLock(dir);
  if (held?.pid === process.pid && held.host === hostname()) {
    await removeFile(join(dir, "pid"));
    await removeFile(join(dir, "lock"));
  }
}

/**
 * Takes the spool for this process (the lock), and drops results made under other
 * settings: the id line first, so that bin/pgha's fast path stops trusting them before
 * they go. Records this process's settings and the id of the call that started it.
 * Returns false when another live process holds the spool.
 */
export async function adoptSpool(
  dir: string,
  command: string,
  config: Config,
  startedBy: string | undefined,
): Promise<boolean> {
  await ensureDir(dir);
  if (!(await takeLock(dir, command))) return false;
  // The holder's PID alone, for bin/pgha (it waits for a running process's results).
  await writeAtomically(join(dir, "pid"), `${process.pid}\n`);
  const identity = storeIdentity(config);
  if ((await readText(join(dir, "config"))) !== identity) {
    await removeFile(join(dir, "id"));
    await rm(join(dir, "ok"), { recursive: true, force: true });
    await rm(join(dir, "error"), { recursive: true, force: true });
    for (const name of await readdir(dir)) {
      if (/^[0-9A-F]{24}$/.test(name)) await removeFile(join(dir, name)); // prefetched segments
    }
    await writeAtomically(join(dir, "config"), identity);
  }
  // Recorded only when the starting call read the config this process read: were they
  // different texts, the id would vouch for settings this process does not use.
  if (
    startedBy !== undefined &&
    !startedBy.includes("\n") &&
    startedBy.endsWith(configIdPart(config.configText))
  ) {
    await writeAtomically(join(dir, "id"), `${startedBy}\n`);
  }
  return true;
}
