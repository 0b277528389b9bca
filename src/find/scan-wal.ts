/**
 * Streams archived WAL through pg_waldump with bounded disk use. Segments are fetched
 * (`fetchSegment`: checked and decompressed by wal/fetch.ts, not fsynced, on a worker
 * thread: fetch-thread.ts) into a temporary directory, and pg_waldump reads them in
 * chunks of CHUNK segments. Up to RUNS chunks are read by pg_waldump at once (2 cores:
 * pg_waldump's decoding is most of the work) while the next is fetched; the lines are
 * handed on in WAL order. At most (RUNS + 1) * CHUNK + 1 segments (208 MiB) are on disk at
 * once.
 *
 * Of pg_waldump's output only the lines that contain one of the request's needles are
 * wanted (needle-lines.ts finds them without splitting the rest into lines).
 *
 * One pg_waldump per chunk (not --follow, which sleeps a whole second whenever it is ahead
 * of the fetcher). Chunk k reads its segments plus, of the first of chunk k+1, the part
 * the record crossing into it takes (its first page header says how long: chunkEnd), so
 * that that record is read whole; lines of records starting in that extra segment are
 * dropped, since chunk k+1 starts there (--start at a segment's start skips the
 * continuation of the record before, as PostgreSQL's reader does). A record that covers
 * that segment whole (longer than a segment: a commit of very many subtransactions or
 * dropped relations) is followed into the segments after it, as far as the segments on
 * disk reach (MAX_SEGMENTS_ON_DISK - CHUNK of them, 144 MiB at 16 MiB segments); one
 * longer still is not read, and the outcome says where (`unread`).
 *
 * The segments of a timeline path come from several timelines (the switch segment from
 * the new one); each is written under one timeline's name, the one pg_waldump is told to
 * read: it only checks that page timelines do not go down, which along a path they do not.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdtemp, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { LocalIoError, PostgresError } from "../errors.js";
import { formatLsn, parseSegmentFileName, segmentName, segmentNumber } from "../wal/names.js";
import { NeedleLines } from "./needle-lines.js";
import type { WalReader } from "./wal-record.js";

/** Segments per pg_waldump run. */
export const CHUNK = 4;
/** pg_waldump runs at once. */
export const RUNS = 2;
/** Segments on disk at most: RUNS chunks being read, the next one fetched, and one more. */
export const MAX_SEGMENTS_ON_DISK = (RUNS + 1) * CHUNK + 1;

export interface ScanRequest {
  /** Repository names of the segments to read, contiguous, in path order. */
  segments: string[];
  segmentSize: number;
  /** Where pg_waldump starts (a record boundary, or before the first record to read). */
  startLsn: bigint;
  /** The timeline the files are named under for pg_waldump (the path's last). */
  timeline: number;
  pgWaldump: string;
  /** pg_waldump's resource managers (-r). */
  rmgrs: string[];
  /** Only lines containing one of these are handed on. */
  needles: string[];
  /** Parent of the temporary directory. */
  tempRoot: string;
}

export interface ScanOutcome {
  segments: number;
  /** Lines handed on. */
  lines: number;
  /** `onLine` asked to stop before the end. */
  stopped: boolean;
  /** Where a record crossing a chunk boundary went on too far to be read (LSNs). */
  unread: string[];
}

/**
 * Calls `onLine` for each line pg_waldump prints that contains a needle, in WAL order,
 * with a reader of raw WAL bytes (for the segments of the current chunk). `onLine`
 * returning "stop" ends the scan.
 */
export async function scanArchivedWal(
  fetchSegment: (name: string, dest: string) => Promise<unknown>,
  request: ScanRequest,
  onLine: (line: string, read: WalReader) => "stop" | undefined,
  debug: (message: string) => void = () => undefined,
): Promise<ScanOutcome> {
  const size = request.segmentSize;
  const segnos = request.segments.map((name) => {
    const file = parseSegmentFileName(name);
    if (!file) throw new Error(`not a segment name: ${name}`);
    return segmentNumber(file, size);
  });
  if (segnos.length === 0) return { segments: 0, lines: 0, stopped: false, unread: [] };
  const dir = await mkdtemp(join(request.tempRoot, "pgha-find-")).catch((error: Error) => {
    throw new LocalIoError(
      `cannot create a temporary directory in ${request.tempRoot}: ${error.message}`,
      {
        hint: `set TMPDIR to a writable directory with room for ${MAX_SEGMENTS_ON_DISK} WAL segments`,
      },
    );
  });
  const localName = (segno: bigint) => segmentName(request.timeline, segno, size);

  const chunks = Math.ceil(segnos.length / CHUNK);
  // Fetching runs ahead of the reader: ready[i] settles once segment i is on disk.
  const settle: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  const ready = segnos.map(
    () =>
      new Promise<void>((resolve, reject) => {
        settle.push({ resolve, reject });
      }),
  );
  for (const r of ready) r.catch(() => undefined);
  /** The oldest chunk whose segments are still needed. */
  let handingChunk = 0;
  let wake: (() => void) | undefined;
  let stop = false;
  const unread: string[] = [];
  const fetcher = (async () => {
    let i = 0;
    try {
      for (; i < segnos.length && !stop; i++) {
        // At most the chunks being read, the next one, and the one after that's first.
        while (!stop && i >= handingChunk * CHUNK + MAX_SEGMENTS_ON_DISK)
          await new Promise<void>((resolve) => (wake = resolve));
        if (stop) break;
        await fetchSegment(request.segments[i] ?? "", join(dir, localName(segnos[i] ?? 0n)));
        settle[i]?.resolve();
      }
      // Stopped: a chunk run still waiting for its segments must not wait for ever.
      for (; i < segnos.length; i++) settle[i]?.reject(new Error("the scan stopped"));
    } catch (error) {
      for (; i < segnos.length; i++) settle[i]?.reject(error);
    }
  })();

  const fds = new Map<bigint, number>();
  const read: WalReader = (lsn, length) => {
    const segno = lsn / BigInt(size);
    let fd = fds.get(segno);
    if (fd === undefined) {
      fd = openSync(join(dir, localName(segno)), "r");
      fds.set(segno, fd);
    }
    const buffer = Buffer.alloc(length);
    const n = readSync(fd, buffer, 0, length, Number(lsn % BigInt(size)));
    return buffer.subarray(0, n);
  };
  const forget = async (segno: bigint) => {
    const fd = fds.get(segno);
    if (fd !== undefined) closeSync(fd);
    fds.delete(segno);
    await unlink(join(dir, localName(segno))).catch(() => undefined);
  };

  /** Reads chunk k once its segments are on disk: the wanted lines of its records. */
  const readChunk = async (k: number, abort: AbortSignal): Promise<string[]> => {
    const first = k * CHUNK;
    const last = Math.min(first + CHUNK, segnos.length) - 1;
    const extra = last + 1 < segnos.length ? last + 1 : undefined;
    const waitStart = Date.now();
    for (let i = first; i <= (extra ?? last); i++) await ready[i];
    const runStart = Date.now();
    const firstSeg = segnos[first] ?? 0n;
    const start = first === 0 ? request.startLsn : firstSeg * BigInt(size);
    /** Lines of records from here on belong to the next chunk. */
    const nextStart =
      extra === undefined ? Number.POSITIVE_INFINITY : Number((segnos[extra] ?? 0n) * BigInt(size));
    let through = extra ?? last;
    let end = ((segnos[through] ?? 0n) + 1n) * BigInt(size);
    if (extra !== undefined) {
      // The record crossing into the next chunk: read to where it ends, following it past
      // segments it covers whole, as far as the fetcher's window (handingChunk = k) goes.
      const reach = Math.min(segnos.length - 1, k * CHUNK + MAX_SEGMENTS_ON_DISK - 1);
      for (;;) {
        const at = (segnos[through] ?? 0n) * BigInt(size);
        const header = read(at, LONG_PAGE_HEADER);
        end = chunkEnd(at, header, size);
        if (!recordGoesOn(at, header, size)) break;
        if (through >= reach) {
          if (through < segnos.length - 1) unread.push(formatLsn(end));
          break;
        }
        through++;
        await ready[through];
      }
    }
    const lines = await runWaldump(request, dir, start, end, extra === undefined, abort);
    debug(
      `restore find: segments ${first}..${through}: waited ${runStart - waitStart} ms for them, read in ${Date.now() - runStart} ms`,
    );
    return lines.filter((text) => lsnOf(text) < nextStart);
  };

  let lines = 0;
  let stopped = false;
  const abort = new AbortController();
  const runs = new Map<number, Promise<string[]>>();
  const launch = (k: number) => {
    if (k >= chunks || runs.has(k)) return;
    const run = readChunk(k, abort.signal);
    run.catch(() => undefined);
    runs.set(k, run);
  };
  try {
    for (let k = 0; k < chunks && !stopped; k++) {
      handingChunk = k;
      wake?.();
      for (let j = k; j < k + RUNS; j++) launch(j);
      const chunkLines = (await runs.get(k)) ?? [];
      runs.delete(k);
      for (const text of chunkLines) {
        lines++;
        if (onLine(text, read) === "stop") {
          stopped = true;
          break;
        }
      }
      const first = k * CHUNK;
      const last = Math.min(first + CHUNK, segnos.length) - 1;
      for (let i = first; i <= last; i++) await forget(segnos[i] ?? 0n);
    }
  } finally {
    stop = true;
    wake?.();
    abort.abort();
    await Promise.allSettled(runs.values());
    await fetcher.catch(() => undefined);
    for (const fd of fds.values()) closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
  return { segments: segnos.length, lines, stopped, unread };
}

const XLOG_BLCKSZ = 8192;
const LONG_PAGE_HEADER = 40;
const SHORT_PAGE_HEADER = 24;
const XLP_FIRST_IS_CONTRECORD = 0x0001;

/**
 * Where a chunk's pg_waldump run stops (--end) when the chunk ends at `segmentStart`, the
 * start of a segment whose first page header is `header` (XLogLongPageHeaderData): the end
 * of the page where the rest of the record that crosses into that segment ends
 * (xlp_rem_len bytes, over page headers), so that pg_waldump reads that record whole and
 * the segment hardly further.
 * A header it cannot vouch for (another page address), or a record going on past the
 * segment, gives the segment's end. Pure.
 */
export function chunkEnd(segmentStart: bigint, header: Buffer, segmentSize: number): bigint {
  const whole = segmentStart + BigInt(segmentSize);
  const pos = restEnd(segmentStart, header);
  if (pos === undefined) return whole;
  // The end of that page: pg_waldump's reader, given part of a page, can take the unread
  // rest for a record (seen: "invalid record length at ...: wanted 24, got 1"); given
  // whole pages only, it stops cleanly at the first record that needs one more.
  const end = Math.max(1, Math.ceil(pos / XLOG_BLCKSZ)) * XLOG_BLCKSZ;
  return end >= segmentSize ? whole : segmentStart + BigInt(end);
}

/**
 * Whether the record that crosses into the segment at `segmentStart` (its first page
 * header `header`) covers it whole and goes on into the next one. Pure.
 */
export function recordGoesOn(segmentStart: bigint, header: Buffer, segmentSize: number): boolean {
  const pos = restEnd(segmentStart, header);
  return pos !== undefined && pos > segmentSize;
}

/**
 * Where, in the segment at `segmentStart`, the rest of the record crossing into it ends
 * (xlp_rem_len bytes after the long page header, over short page headers; past the
 * segment's size when it goes on), or undefined for a header it cannot vouch for.
 */
function restEnd(segmentStart: bigint, header: Buffer): number | undefined {
  if (header.length < LONG_PAGE_HEADER || header.readBigUInt64LE(8) !== segmentStart) {
    return undefined;
  }
  const info = header.readUInt16LE(2);
  let remaining = info & XLP_FIRST_IS_CONTRECORD ? header.readUInt32LE(16) : 0;
  let pos = LONG_PAGE_HEADER;
  while (remaining > 0) {
    const take = Math.min(XLOG_BLCKSZ - (pos % XLOG_BLCKSZ), remaining);
    remaining -= take;
    pos += take;
    if (remaining > 0) pos += SHORT_PAGE_HEADER;
  }
  return pos;
}

/** The LSN of a pg_waldump line as a number (exact below 2^53 bytes of WAL), or -1. */
export function lsnOf(line: string): number {
  const at = line.indexOf("lsn: ");
  if (at < 0) return -1;
  // Once per line: hex digits read in place, nothing allocated.
  let hi = 0;
  let i = at + 5;
  for (let c = line.charCodeAt(i); c !== 47; c = line.charCodeAt(++i)) hi = hi * 16 + hexDigit(c);
  let lo = 0;
  for (let c = line.charCodeAt(++i); c !== 44; c = line.charCodeAt(++i)) lo = lo * 16 + hexDigit(c);
  return hi * 2 ** 32 + lo;
}

function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : (c | 32) - 87;
}

/**
 * One pg_waldump run from `start` to `end`: the lines with a needle. Aborting kills it
 * (its outcome is then not looked at).
 */
async function runWaldump(
  request: ScanRequest,
  dir: string,
  start: bigint,
  end: bigint,
  /** The last chunk: WAL may end before `end` there. */
  atArchiveEnd: boolean,
  abort: AbortSignal,
): Promise<string[]> {
  const child = spawn(
    request.pgWaldump,
    [
      "--path",
      dir,
      "--timeline",
      String(request.timeline),
      "--start",
      formatLsn(start),
      "--end",
      formatLsn(end),
      ...request.rmgrs.flatMap((r) => ["--rmgr", r]),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TZ: "UTC" } },
  );
  const kill = () => child.kill("SIGTERM");
  abort.addEventListener("abort", kill, { once: true });
  let stderr = "";
  child.stderr.on("data", (d) => {
    if (stderr.length < 4000) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", (error) =>
      reject(
        new PostgresError(`cannot run ${request.pgWaldump}: ${error.message}`, {
          hint: "restore find runs the server's pg_waldump: set --pg-bin to the directory of the PostgreSQL binaries",
        }),
      ),
    );
    child.on("close", (code) => resolve(code));
  });
  exited.catch(() => undefined);
  const picker = new NeedleLines(request.needles);
  const lines: string[] = [];
  try {
    for await (const piece of child.stdout) lines.push(...picker.push(piece as Buffer));
    lines.push(...picker.end());
    const code = await exited;
    if (abort.aborted) return lines;
    // pg_waldump ends by itself at --end (exit 0). At the end of the archive a segment may
    // end in an unfinished record that continues in WAL not archived yet: "invalid record
    // length ... got 0" or a missing next file is then its way of saying so, not damage.
    if (code !== 0) {
      const first = stderr.trim().split("\n")[0] ?? "";
      const endOfWal =
        atArchiveEnd &&
        /invalid record length at|could not find file|contrecord is requested/.test(first);
      if (!endOfWal)
        throw new PostgresError(`pg_waldump failed (exit ${code})${first ? `: ${first}` : ""}`, {
          hint: "the archived WAL could not be read; 'pgha verify' checks it",
        });
    }
    return lines;
  } finally {
    abort.removeEventListener("abort", kill);
  }
}
