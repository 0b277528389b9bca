/**
 * The restore prefetcher: one process per data directory in recovery that keeps the
 * `depth` segments after the one recovery last asked for downloaded, decompressed,
 * checksum-verified and fsynced in the spool (pg_wal/.pgha/prefetch/<name>), so that the
 * next restore_command call is a rename.
 *
 * - Where recovery is: the name wal-fetch last fetched itself (the `want` file), moved on
 *   by every prefetched file that disappears (delivered by a rename). A name on another
 *   timeline (recovery switched) or behind moves the window: files outside it are deleted.
 * - Only verified files are ever in the spool; "not found" and failures are never cached:
 *   the call that misses fetches the segment itself, with every fail-closed rule of a
 *   plain wal-fetch (a corrupt object still stops recovery).
 * - Disk use is bounded: at most `depth` segments (and `jobs` downloads in flight).
 * - It stops about a second after the server it prefetches for stops (serverRunning), once
 *   the downloads in flight end, not only after --idle-exit: nothing goes on writing into
 *   a stopped server's data directory.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { NotFoundError } from "../errors.js";
import { isErrno } from "../local-files.js";
import type { Logger } from "../log.js";
import { parseSegmentFileName, segmentName, segmentNumber } from "./names.js";
import { readText, removeFile, writeAtomically } from "./spool.js";
import { Ticker } from "./ticker.js";

export interface PrefetcherDeps {
  /** The prefetch spool (spoolDir(pgdata, "prefetch")). */
  spool: string;
  /** Segments kept ahead of recovery. */
  depth: number;
  /** Downloads at once. */
  jobs: number;
  segmentSize: number;
  /** Downloads and verifies name into dest (fetchWalFile); NotFoundError when not archived. */
  fetch: (name: string, dest: string) => Promise<void>;
  log: Logger;
  now: () => number;
  /** Exit after this long without recovery moving; undefined: run until stopped. */
  idleExitMs: number | undefined;
  /**
   * Whether the server recovery runs in is still running (checked every SERVER_CHECK_MS);
   * undefined when no server ran when the prefetcher started (a wal-fetch by hand).
   */
  serverRunning?: (() => Promise<boolean>) | undefined;
}

const TICK_MS = 100;
/** How long a name found missing (the end of the archive) is left alone. */
const MISSING_RETRY_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** How often the prefetcher looks whether its server still runs. */
export const SERVER_CHECK_MS = 1000;

const isSegment = (name: string) => /^[0-9A-F]{24}$/.test(name);

/** The `depth` segment names after `name` on its timeline. */
export function windowAfter(name: string, depth: number, segmentSize: number): string[] {
  const file = parseSegmentFileName(name);
  if (file?.kind !== "segment") return [];
  const first = segmentNumber(file, segmentSize);
  const names: string[] = [];
  for (let i = 1n; i <= BigInt(depth); i++) {
    names.push(segmentName(file.timeline, first + i, segmentSize));
  }
  return names;
}

export class Prefetcher {
  private readonly inflight = new Set<string>();
  /** Files this process placed in the spool and has not deleted itself. */
  private readonly placed = new Set<string>();
  private readonly blocked = new Map<string, { until: number; attempts: number }>();
  private position: string | undefined;
  private wantSeen = "";
  private movedAt: number;
  private serverCheckedAt: number;
  private readonly ticker = new Ticker(TICK_MS);
  /** What status.json reports: segments downloaded, and delivered by a rename. */
  private readonly counts = { fetched: 0, delivered: 0 };
  private statusText = "";
  private windowText = "";

  constructor(private readonly deps: PrefetcherDeps) {
    this.movedAt = deps.now();
    this.serverCheckedAt = deps.now();
  }

  poke(): void {
    this.ticker.poke();
  }

  stop(): void {
    this.ticker.stop();
  }

  async run(): Promise<void> {
    const { spool } = this.deps;
    this.ticker.watch([spool]);
    try {
      while (!this.ticker.stopped) {
        const present = await this.presentFiles();
        if (present === undefined) {
          this.deps.log.info("the spool is gone (the data directory was removed?): stopping");
          break;
        }
        await this.follow(present);
        const window = this.position
          ? windowAfter(this.position, this.deps.depth, this.deps.segmentSize)
          : [];
        await this.trim(present, new Set(window));
        // Before any new download: downloads in flight are finished when it stops.
        if (await this.serverStopped()) {
          this.deps.log.info("the server stopped: stopping");
          break;
        }
        this.launch(window, present);
        await this.writeWindow(window);
        await this.writeStatus();
        const idle = this.deps.now() - this.movedAt;
        if (
          this.deps.idleExitMs !== undefined &&
          idle >= this.deps.idleExitMs &&
          this.inflight.size === 0
        )
          break;
        await this.ticker.wait();
      }
    } finally {
      await this.ticker.close(this.inflight);
      // Nothing prefetched outlives the process: it would only take space in pg_wal.
      for (const name of (await this.presentFiles()) ?? []) await removeFile(join(spool, name));
    }
  }

  /** Whether the server is known to have stopped (looked at every SERVER_CHECK_MS). */
  private async serverStopped(): Promise<boolean> {
    const { serverRunning, now } = this.deps;
    if (serverRunning === undefined || now() - this.serverCheckedAt < SERVER_CHECK_MS) return false;
    this.serverCheckedAt = now();
    return !(await serverRunning());
  }

  private async presentFiles(): Promise<string[] | undefined> {
    try {
      return (await readdir(this.deps.spool)).filter(isSegment);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /** Moves the position: a new want, or files that were delivered (renamed away). */
  private async follow(present: string[]): Promise<void> {
    const wantPath = join(this.deps.spool, "want");
    const want = (await readText(wantPath))?.trim() ?? "";
    const wantStat = await stat(wantPath).catch(() => undefined);
    const wantKey = `${want}@${wantStat?.mtimeMs ?? 0}`;
    if (want !== "" && wantKey !== this.wantSeen && isSegment(want)) {
      this.wantSeen = wantKey;
      this.moveTo(want);
    }
    const here = new Set(present);
    for (const name of [...this.placed]) {
      if (here.has(name) || this.inflight.has(name)) continue;
      this.placed.delete(name); // delivered
      this.counts.delivered++;
      if (
        this.position === undefined ||
        (name.slice(0, 8) === this.position.slice(0, 8) && name > this.position)
      ) {
        this.moveTo(name);
      }
    }
  }

  /** status.json: where recovery is and what the prefetcher did, when that changed. */
  private async writeStatus(): Promise<void> {
    const text = `${JSON.stringify({ position: this.position ?? null, depth: this.deps.depth, ...this.counts })}\n`;
    if (text === this.statusText) return;
    this.statusText = text;
    await writeAtomically(join(this.deps.spool, "status.json"), text).catch(() => undefined);
  }

  /**
   * prefetch/window: what a restore_command call may wait for instead of fetching it
   * itself: the window but for names found missing or failing (those the call fetches).
   */
  private async writeWindow(window: string[]): Promise<void> {
    const now = this.deps.now();
    const firstBlocked = window.findIndex((name) => (this.blocked.get(name)?.until ?? 0) > now);
    const names = firstBlocked === -1 ? window : window.slice(0, firstBlocked);
    const text = names.map((name) => `${name}\n`).join("");
    if (text === this.windowText) return;
    this.windowText = text;
    await writeAtomically(join(this.deps.spool, "window"), text).catch(() => undefined);
  }

  private moveTo(name: string): void {
    if (name !== this.position) {
      this.position = name;
      this.movedAt = this.deps.now();
    }
  }

  /** Deletes spool files outside the window (behind recovery, or on a timeline it left). */
  private async trim(present: string[], window: Set<string>): Promise<void> {
    for (const name of present) {
      if (window.has(name) || this.inflight.has(name)) continue;
      await removeFile(join(this.deps.spool, name));
      this.placed.delete(name);
    }
    for (const name of [...this.blocked.keys()]) if (!window.has(name)) this.blocked.delete(name);
  }

  private launch(window: string[], present: string[]): void {
    const here = new Set(present);
    const now = this.deps.now();
    for (const name of window) {
      if (this.inflight.size >= this.deps.jobs) break;
      if (here.has(name) || this.inflight.has(name)) continue;
      const blocked = this.blocked.get(name);
      // Past a segment that is not archived yet, the later ones are not either.
      if (blocked && blocked.until > now) break;
      this.ticker.start(this.inflight, name, () => this.download(name));
    }
  }

  private async download(name: string): Promise<void> {
    const { deps } = this;
    try {
      await deps.fetch(name, join(deps.spool, name));
      this.placed.add(name);
      this.counts.fetched++;
      this.blocked.delete(name);
    } catch (error) {
      const attempts = (this.blocked.get(name)?.attempts ?? 0) + 1;
      if (error instanceof NotFoundError) {
        this.blocked.set(name, { until: deps.now() + MISSING_RETRY_MS, attempts });
        return;
      }
      const backoff = Math.min(MAX_BACKOFF_MS, 2000 * 2 ** (attempts - 1));
      this.blocked.set(name, { until: deps.now() + backoff, attempts });
      deps.log.error(
        `prefetching ${name} failed: ${(error as Error).message} (the restore_command call for it fetches it itself)`,
      );
    }
  }
}
