/**
 * WAL file names, LSNs and segment arithmetic: the ONE place that knows how PostgreSQL
 * names WAL files. A leaf module: it imports nothing (biome.json enforces it), so the
 * pure retention engine (retention/) may use it too.
 *
 * Names as PostgreSQL writes them into pg_wal and hands them to archive_command /
 * restore_command:
 *
 *   segment   000000010000000A000000FF            timeline, log, segment (8 hex each)
 *   partial   000000010000000A000000FF.partial    last, incomplete segment of an old timeline
 *   backup    000000010000000A000000FF.00000028.backup   backup history file
 *   history   00000002.history                    timeline history file
 *
 * Anything else is not a WAL file and is refused by wal-push and wal-fetch. Timeline 0
 * does not exist: names on it are not WAL names either.
 */

declare const timelineBrand: unique symbol;
/** A timeline id, 1 .. 0xFFFFFFFF. */
export type TimelineId = number & { readonly [timelineBrand]: true };

/** A file at a segment position: the segment itself, its .partial, or a backup history file. */
export interface WalSegmentFile {
  readonly name: string;
  readonly kind: "segment" | "partial" | "backup";
  readonly timeline: TimelineId;
  /** The 24-hex segment name this file belongs to. */
  readonly segment: string;
  /** High and low 32 bits of the segment position: log and seg as written in the name. */
  readonly log: number;
  readonly seg: number;
}

/** A timeline history file: it names a timeline, not a segment position. */
export interface WalHistoryFile {
  readonly name: string;
  readonly kind: "history";
  readonly timeline: TimelineId;
}

export type WalFileName = WalSegmentFile | WalHistoryFile;
export type WalFileKind = WalFileName["kind"];

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const PARTIAL = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.partial$/;
const BACKUP = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.[0-9A-F]{8}\.backup$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;
const SEGMENT_KINDS: readonly [RegExp, WalSegmentFile["kind"]][] = [
  [SEGMENT, "segment"],
  [PARTIAL, "partial"],
  [BACKUP, "backup"],
];

/** Parses a WAL file name; returns undefined for anything that is not one. */
export function parseWalFileName(name: string): WalFileName | undefined {
  const history = HISTORY.exec(name);
  if (history) {
    const timeline = Number.parseInt(history[1] ?? "", 16);
    if (timeline === 0) return undefined;
    return { name, kind: "history", timeline: timeline as TimelineId };
  }
  for (const [pattern, kind] of SEGMENT_KINDS) {
    const match = pattern.exec(name);
    if (!match) continue;
    const [, tli = "", log = "", seg = ""] = match;
    const timeline = Number.parseInt(tli, 16);
    if (timeline === 0) return undefined;
    return {
      name,
      kind,
      timeline: timeline as TimelineId,
      segment: `${tli}${log}${seg}`,
      log: Number.parseInt(log, 16),
      seg: Number.parseInt(seg, 16),
    };
  }
  return undefined;
}

/** A segment, .partial or .backup file name; undefined for history files and non-WAL names. */
export function parseSegmentFileName(name: string): WalSegmentFile | undefined {
  const file = parseWalFileName(name);
  return file?.kind === "history" ? undefined : file;
}

/** "00000002.history" for timeline 2. */
export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

/** Segments per 4 GiB "log" for a segment size: the seg part of a name stays below it. */
export function segmentsPerLog(segmentSize: number): number {
  return 0x1_0000_0000 / segmentSize;
}

/** wal_segment_size is a power of two from 1 MiB to 1 GiB. */
export function isValidSegmentSize(size: number): boolean {
  return size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0;
}

/** The segment number (position / segment size) of a segment-position file. */
export function segmentNumber(file: WalSegmentFile, segmentSize: number): bigint {
  return BigInt(file.log) * BigInt(segmentsPerLog(segmentSize)) + BigInt(file.seg);
}

/** Start LSN of a segment as a bigint: (log * segmentsPerLog + seg) * segmentSize. */
export function segmentStartLsn(file: WalSegmentFile, segmentSize: number): bigint {
  return segmentNumber(file, segmentSize) * BigInt(segmentSize);
}

/** The 24-hex name of segment number segno on a timeline. */
export function segmentName(timeline: number, segno: bigint, segmentSize: number): string {
  const perLog = BigInt(segmentsPerLog(segmentSize));
  return `${hex8(timeline)}${hex8(segno / perLog)}${hex8(segno % perLog)}`;
}

/** The segment holding the byte just before lsn: the last one a record ending at lsn needs. */
export function segmentBeforeLsn(timeline: number, lsn: bigint, segmentSize: number): string {
  return segmentName(timeline, (lsn - 1n) / BigInt(segmentSize), segmentSize);
}

/** Every segment name from first to last (inclusive) on first's timeline. */
export function segmentRange(first: string, last: string, segmentSize: number): string[] {
  const a = parseWalFileName(first);
  const b = parseWalFileName(last);
  if (a?.kind !== "segment" || b?.kind !== "segment")
    throw new Error(`bad segment range ${first}..${last}`);
  const out: string[] = [];
  for (let n = segmentNumber(a, segmentSize); n <= segmentNumber(b, segmentSize); n++) {
    out.push(segmentName(a.timeline, n, segmentSize));
  }
  return out;
}

/** "16/B374D848" -> bigint, or undefined for anything else. */
export function parseLsn(text: string): bigint | undefined {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  return match ? (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`) : undefined;
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function hex8(n: bigint | number): string {
  return n.toString(16).toUpperCase().padStart(8, "0");
}
