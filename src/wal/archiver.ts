/**
 * The asynchronous archiver: one process per data directory that looks ahead at
 * pg_wal/archive_status/*.ready, prepares (reads, hashes, compresses) and stores several
 * files at once, and records each file that is stored and verified as an ok marker in the
 * spool (spool.ts). `wal-push` (and bin/pgha's shell fast path) exits 0 for a file only
 * when its ok marker is there; so nothing is acknowledged to PostgreSQL before the
 * repository holds it, whatever this process does.
 *
 * - It never renames or touches .ready / .done files: PostgreSQL (and other archivers
 *   chained in the same archive_command) own them.
 * - A file that fails is retried with backoff, at once when a wal-push waits for it (a
 *   want marker newer than the failure), and its last failure is written to error/<name>
 *   for the waiting wal-push to report. There is no queue limit that drops WAL: when the
 *   backlog passes `backlogWarnBytes` the archiver says so (log, status.json) and goes on.
 * - Markers for files that are no longer .ready (PostgreSQL marked them .done) are removed.
 */
import { readdir, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { PghaError } from "../errors.js";
import { isErrno } from "../local-files.js";
import type { Logger } from "../log.js";
import { toWire } from "./prepare-pool.js";
import type { PreparedWal, PushOutcome } from "./push.js";
import { ensureDir, removeFile, writeAtomically } from "./spool.js";
import { Ticker } from "./ticker.js";

export interface ArchiverDeps {
  /** The data directory: its pg_wal holds the files and archive_status. */
  pgdata: string;
  /** The archive spool (spoolDir(pgdata, "archive")). */
  spool: string;
  prepare: (path: string) => Promise<PreparedWal>;
  store: (prepared: PreparedWal) => Promise<PushOutcome>;
  /** Files prepared or stored at the same time. */
  jobs: number;
  log: Logger;
  now: () => number;
  /** Exit after this long with nothing to do (on-demand start); undefined: run until stopped. */
  idleExitMs: number | undefined;
  /** Warn when the files waiting to be archived pass this many bytes. */
  backlogWarnBytes: number;
  /** Stop when this turns true (the config file changed, say). */
  shouldStop?: () => boolean;
}

export interface ArchiverStatus {
  pid: number;
  startedAt: string;
  updatedAt: string;
  /** Files PostgreSQL marked .ready that are not stored yet, and their bytes. */
  backlog: { files: number; bytes: number; oldest: string | null };
  backlogWarnBytes: number;
  overLimit: boolean;
  stored: number;
  lastStored: { name: string; at: string } | null;
  lastError: { name: string; message: string; at: string } | null;
}

interface Failure {
  at: number;
  retryAt: number;
  attempts: number;
}

const MAX_BACKOFF_MS = 30_000;
/**
 * Files in flight beyond the `jobs` being prepared: stored ones wait on the network (a
 * remote store's latency), not on a core; each holds its compressed body (a few MiB).
 */
const UPLOADS_AHEAD = 8;
const TICK_MS = 200;

/** History files first (PostgreSQL archives them first too), then in WAL order. */
export function archiveOrder(a: string, b: string): number {
  const ha = a.endsWith(".history");
  const hb = b.endsWith(".history");
  if (ha !== hb) return ha ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Archiver {
  private readonly inflight = new Set<string>();
  /** Stored by this process (ok marker written) and still .ready: never started again. */
  private readonly stored = new Set<string>();
  private readonly failures = new Map<string, Failure>();
  private readonly ticker = new Ticker(TICK_MS);
  private idleSince: number;
  private lastWarnAt = 0;
  private lastStatusAt = 0;
  private readonly status: ArchiverStatus;

  constructor(private readonly deps: ArchiverDeps) {
    this.idleSince = deps.now();
    const at = new Date(deps.now()).toISOString();
    this.status = {
      pid: process.pid,
      startedAt: at,
      updatedAt: at,
      backlog: { files: 0, bytes: 0, oldest: null },
      backlogWarnBytes: deps.backlogWarnBytes,
      overLimit: false,
      stored: 0,
      lastStored: null,
      lastError: null,
    };
  }

  private get statusDir() {
    return join(this.deps.pgdata, "pg_wal", "archive_status");
  }

  /** Asks the loop to look again now (a new .ready file, a waiting wal-push). */
  poke(): void {
    this.ticker.poke();
  }

  stop(): void {
    this.ticker.stop();
  }

  /** Runs until stopped, or idle for idleExitMs; in-flight files are finished first. */
  async run(): Promise<void> {
    const { spool, log } = this.deps;
    await ensureDir(join(spool, "ok"));
    await ensureDir(join(spool, "error"));
    await ensureDir(join(spool, "want"));
    this.ticker.watch([this.statusDir, join(spool, "want")]);
    try {
      while (!this.ticker.stopped && !this.deps.shouldStop?.()) {
        const ready = await this.readyFiles();
        if (ready === undefined) {
          log.info("pg_wal/archive_status is gone: stopping");
          break;
        }
        const pending = await this.settleMarkers(ready);
        await this.launch(pending);
        await this.reportBacklog(pending);
        const now = this.deps.now();
        if (pending.length > 0 || this.inflight.size > 0) this.idleSince = now;
        else if (this.deps.idleExitMs !== undefined && now - this.idleSince >= this.deps.idleExitMs)
          break;
        await this.ticker.wait();
      }
    } finally {
      await this.ticker.close(this.inflight);
      const ready = await this.readyFiles().catch(() => undefined);
      if (ready)
        await this.reportBacklog(await this.settleMarkers(ready), true).catch(() => undefined);
      await this.writeStatus(true);
    }
  }

  /** The .ready files, in archive order; undefined when the directory is gone. */
  private async readyFiles(): Promise<string[] | undefined> {
    try {
      const names = await readdir(this.statusDir);
      return names
        .filter((n) => n.endsWith(".ready"))
        .map((n) => n.slice(0, -".ready".length))
        .sort(archiveOrder);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /**
   * Drops markers of files PostgreSQL has done with, and markers older than their file
   * (which wal-push never accepts: the file is archived again, and a changed content then
   * fails as a conflict instead of a wal-push waiting forever); returns the files to store.
   */
  private async settleMarkers(ready: string[]): Promise<string[]> {
    const { spool } = this.deps;
    const readySet = new Set(ready);
    const ok = new Set(await readdir(join(spool, "ok")).catch(() => [] as string[]));
    for (const kind of ["ok", "error", "want"]) {
      const names = kind === "ok" ? [...ok] : await readdir(join(spool, kind)).catch(() => []);
      for (const name of names) {
        if (name.includes(".tmp-")) continue;
        if (readySet.has(name) && (kind !== "ok" || (await this.markerCovers(name)))) continue;
        await removeFile(join(spool, kind, name));
        if (kind === "ok") {
          ok.delete(name);
          this.stored.delete(name);
        }
      }
    }
    for (const name of this.failures.keys()) if (!readySet.has(name)) this.failures.delete(name);
    for (const name of this.stored) if (!readySet.has(name)) this.stored.delete(name);
    return ready.filter((name) => !ok.has(name) && !this.stored.has(name));
  }

  /** Starts files, those a wal-push waits for first, up to `jobs` + UPLOADS_AHEAD at once. */
  private async launch(pending: string[]): Promise<void> {
    const { spool } = this.deps;
    const wanted = new Set(await readdir(join(spool, "want")).catch(() => [] as string[]));
    const order = [
      ...pending.filter((n) => wanted.has(n)),
      ...pending.filter((n) => !wanted.has(n)),
    ];
    const now = this.deps.now();
    for (const name of order) {
      if (this.inflight.size >= this.deps.jobs + UPLOADS_AHEAD) break;
      if (this.inflight.has(name) || this.stored.has(name)) continue;
      const failed = this.failures.get(name);
      if (failed && failed.retryAt > now) {
        const want = wanted.has(name)
          ? await stat(join(spool, "want", name)).catch(() => undefined)
          : undefined;
        if (!want || want.mtimeMs <= failed.at) continue;
      }
      this.ticker.start(this.inflight, name, () => this.archive(name));
    }
  }

  /** Whether ok/<name> is not older than the file (what wal-push and bin/pgha check). */
  private async markerCovers(name: string): Promise<boolean> {
    const marker = await stat(join(this.deps.spool, "ok", name)).catch(() => undefined);
    const file = await stat(join(this.deps.pgdata, "pg_wal", name)).catch(() => undefined);
    return marker === undefined || file === undefined || file.mtimeMs <= marker.mtimeMs;
  }

  private async archive(name: string): Promise<void> {
    const { deps } = this;
    const path = join(deps.pgdata, "pg_wal", name);
    try {
      const read = await stat(path);
      const outcome = await deps.store(await deps.prepare(path));
      const at = new Date(deps.now()).toISOString();
      // The ok marker is the acknowledgement: written only now that the repository holds it.
      const marker = join(deps.spool, "ok", name);
      await writeAtomically(
        marker,
        `${JSON.stringify({ sha256: outcome.sha256, size: outcome.rawSize, status: outcome.status, at })}\n`,
      );
      // Not older than the file as it was read, whatever the clock did meanwhile (a step
      // back): wal-push compares the two times. 1 ms above it, Date's resolution.
      if ((await stat(marker)).mtimeMs <= read.mtimeMs) {
        const time = new Date(Math.floor(read.mtimeMs) + 1);
        await utimes(marker, time, time);
      }
      this.stored.add(name);
      await removeFile(join(deps.spool, "error", name));
      this.failures.delete(name);
      this.status.stored++;
      this.status.lastStored = { name, at };
      deps.log.debug(`archived ${name} (${outcome.status})`);
    } catch (error) {
      const now = deps.now();
      const previous = this.failures.get(name);
      const attempts = (previous?.attempts ?? 0) + 1;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempts - 1));
      this.failures.set(name, { at: now, retryAt: now + backoff, attempts });
      const wire = toWire(error);
      const at = new Date(now).toISOString();
      this.status.lastError = { name, message: wire.message, at };
      deps.log.error(
        `${name}: ${wire.message} (attempt ${attempts}; retrying in ${Math.round(backoff / 1000)}s)`,
      );
      if (!(error instanceof PghaError)) deps.log.error((error as Error).stack ?? String(error));
      await writeAtomically(
        join(deps.spool, "error", name),
        `${JSON.stringify({ ...wire, at, attempts })}\n`,
      ).catch(() => undefined);
    }
  }

  private async reportBacklog(pending: string[], force = false): Promise<void> {
    const now = this.deps.now();
    if (!force && now - this.lastStatusAt < 1000) return;
    this.lastStatusAt = now;
    let bytes = 0;
    for (const name of pending) {
      const info = await stat(join(this.deps.pgdata, "pg_wal", name)).catch(() => undefined);
      bytes += info?.size ?? 0;
    }
    const overLimit = bytes > this.deps.backlogWarnBytes;
    this.status.backlog = { files: pending.length, bytes, oldest: pending[0] ?? null };
    this.status.overLimit = overLimit;
    if (overLimit && now - this.lastWarnAt >= 60_000) {
      this.lastWarnAt = now;
      this.deps.log.warn(
        `archive backlog: ${pending.length} files (${Math.round(bytes / 2 ** 20)} MiB) waiting, over the ${Math.round(this.deps.backlogWarnBytes / 2 ** 20)} MiB limit; pg_wal grows until they are stored (nothing is dropped)`,
      );
    }
    await this.writeStatus(this.ticker.stopped);
  }

  private async writeStatus(final: boolean): Promise<void> {
    this.status.updatedAt = new Date(this.deps.now()).toISOString();
    const text = `${JSON.stringify({ ...this.status, running: !final }, null, 2)}\n`;
    await writeAtomically(join(this.deps.spool, "status.json"), text).catch(() => undefined);
  }
}
