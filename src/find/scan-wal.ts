/**
 * Streams archived WAL through pg_waldump with bounded disk use: segments are fetched
 * (checked, decompressed: wal/fetch.ts) into a temporary directory at most `window`
 * segments ahead of what pg_waldump has printed, and deleted once it is past them.
 * Fetching and decompressing overlap with pg_waldump's reading (--follow waits for the
 * next file while it is being fetched).
 *
 * The segments of a timeline path come from several timelines (the switch segment from
 * the new one); each is written under one timeline's name, the one pg_waldump is told to
 * read: it only checks that page timelines do not go down, which along a path they do not.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdtemp, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LocalIoError, PostgresError } from "../errors.js";
import { type FetchDeps, fetchWalFile } from "../wal/fetch.js";
import { formatLsn, parseSegmentFileName, segmentName, segmentNumber } from "../wal/names.js";
import type { WalReader } from "./wal-record.js";

export interface ScanRequest {
  /** Repository names of the segments to read, contiguous, in path order. */
  segments: string[];
  segmentSize: number;
  /** Where pg_waldump starts (a record boundary or before the first record to read). */
  startLsn: bigint;
  /** The timeline the files are named under for pg_waldump (the path's last). */
  timeline: number;
  pgWaldump: string;
  /** pg_waldump's resource managers (-r). */
  rmgrs: string[];
  /** Parent of the temporary directory. */
  tempRoot: string;
  /** How many segments may be on disk at once (at least 2). */
  window: number;
}

export interface ScanOutcome {
  segments: number;
  lines: number;
  /** pg_waldump stopped early: `onLine` asked it to. */
  stopped: boolean;
}

/**
 * How long pg_waldump may print nothing once every segment is on disk: it then has at most
 * `window` segments left (well under a second each), so silence means it is stuck on WAL
 * it cannot read (--follow retries forever).
 */
const STUCK_MS = 30_000;

/**
 * Calls `onLine` for each line pg_waldump prints, with a reader of raw WAL bytes (valid for
 * segments not yet deleted: the current record's). `onLine` returning "stop" ends the scan.
 */
export async function scanArchivedWal(
  deps: FetchDeps,
  request: ScanRequest,
  onLine: (line: string, read: WalReader) => "stop" | undefined,
): Promise<ScanOutcome> {
  const size = request.segmentSize;
  const segnos = request.segments.map((name) => {
    const file = parseSegmentFileName(name);
    if (!file) throw new Error(`not a segment name: ${name}`);
    return segmentNumber(file, size);
  });
  const first = segnos[0];
  const last = segnos.at(-1);
  if (first === undefined || last === undefined) return { segments: 0, lines: 0, stopped: false };
  const dir = await mkdtemp(join(request.tempRoot, "pgha-find-")).catch((error: Error) => {
    throw new LocalIoError(
      `cannot create a temporary directory in ${request.tempRoot}: ${error.message}`,
    );
  });
  const localName = (segno: bigint) => segmentName(request.timeline, segno, size);
  const window = Math.max(2, request.window);

  // The fetcher runs ahead of pg_waldump by at most `window` segments.
  let readingSegno = first;
  let wake: (() => void) | undefined;
  let stop = false;
  let allFetched = false;
  const waitForRoom = () => new Promise<void>((resolve) => (wake = resolve));
  let firstFetched: () => void = () => undefined;
  const firstReady = new Promise<void>((resolve) => (firstFetched = resolve));
  const fetcher = (async () => {
    for (let i = 0; i < request.segments.length && !stop; i++) {
      const segno = segnos[i] ?? 0n;
      while (!stop && segno >= readingSegno + BigInt(window)) await waitForRoom();
      if (stop) break;
      await fetchWalFile(deps, request.segments[i] ?? "", join(dir, localName(segno)));
      if (i === 0) firstFetched();
    }
    allFetched = true;
  })();
  // pg_waldump reads the segment size from its first file: it must be there at its start.
  try {
    await Promise.race([firstReady, fetcher]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

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

  const endLsn = (last + 1n) * BigInt(size);
  const child = spawn(
    request.pgWaldump,
    [
      "--follow",
      "--path",
      dir,
      "--timeline",
      String(request.timeline),
      "--start",
      formatLsn(request.startLsn),
      "--end",
      formatLsn(endLsn),
      ...request.rmgrs.flatMap((r) => ["--rmgr", r]),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TZ: "UTC" } },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    if (stderr.length < 4000) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code));
  });
  let lines = 0;
  let lastOutput = Date.now();
  let stuck = false;
  const idle = setInterval(() => {
    if (allFetched && Date.now() - lastOutput > STUCK_MS) {
      stuck = true;
      child.kill("SIGTERM");
    }
  }, 1000);
  let stopped = false;
  let failure: unknown;
  fetcher.catch((error) => {
    failure = error;
    child.kill("SIGTERM");
  });
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      lastOutput = Date.now();
      lines++;
      const at = line.indexOf("lsn: ");
      if (at > 0) {
        const slash = line.indexOf("/", at);
        const comma = line.indexOf(",", slash);
        const lsn =
          (BigInt(`0x${line.slice(at + 5, slash)}`) << 32n) |
          BigInt(`0x${line.slice(slash + 1, comma)}`);
        const segno = lsn / BigInt(size);
        if (segno > readingSegno) {
          // pg_waldump is past the segments before this record's (its start may be in the
          // one before): those go.
          for (let s = readingSegno - 1n; s < segno - 1n; s++) if (s >= first) await forget(s);
          readingSegno = segno;
          wake?.();
        }
      }
      if (onLine(line, read) === "stop") {
        stopped = true;
        break;
      }
    }
  } finally {
    clearInterval(idle);
    stop = true;
    wake?.();
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited.catch(() => undefined);
    await fetcher.catch(() => undefined);
    for (const fd of fds.values()) closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
  if (failure) throw failure;
  // pg_waldump ends by itself (exit 0) at --end, the end of the last segment.
  if (!stopped && (stuck || child.exitCode !== 0))
    throw new PostgresError(
      `pg_waldump ${stuck ? `read nothing for ${STUCK_MS / 1000}s` : `failed (exit ${child.exitCode})`}${stderr.trim() ? `: ${stderr.trim().split("\n")[0]}` : ""}`,
      { hint: "the archived WAL could not be read to its end; 'pgha verify' checks it" },
    );
  return { segments: request.segments.length, lines, stopped };
}
