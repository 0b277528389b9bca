/**
 * The WAL horizon: which archived WAL the kept base backups still need. Pure.
 *
 * - The anchor is the newest kept backup that ended at or before the start of the PITR
 *   window (now - window; window-base.ts, the backup retention keeps as the window's base): from its start, WAL is kept continuously up to now, on its
 *   timeline and every later one, so any second of the window can be restored. When no
 *   kept backup ended that early, the oldest kept backup is the anchor (the window then
 *   starts at that backup's end: nothing older can be restored anyway).
 *   (Anchoring at the backup that covers the window's start, rather than at the oldest
 *   backup inside it, is what makes the window's first hours restorable.)
 * - Every kept backup older than the anchor keeps only its own WAL, from its start
 *   segment to its stop segment, so it stays restorable to its end point.
 * - Timeline history files are kept from the lowest timeline any kept range is on: each
 *   lists its ancestors, and a restore following a later timeline needs them.
 * - With no kept backup at all, nothing is prunable (a first backup may be running).
 * - Everything else is prunable.
 */
import {
  parseSegmentFileName,
  parseWalFileName,
  segmentName,
  segmentNumber,
} from "../src/wal/names.js";
import { RetentionPolicyError } from "./errors.js";
import { findWindowBase, windowStart, withWholeChains } from "./window-base.js";

export interface BackupSpan {
  id: string;
  timeline: number;
  startWal: string;
  stopWal: string;
  stopTime: string;
  /** An incremental's chain: it can anchor the window only with all of it kept. */
  chain?: readonly string[] | undefined;
}

export interface SegmentRange {
  timeline: number;
  /** First kept segment (24-hex name). */
  from: string;
  /** Last kept segment, or null: up to the newest. */
  to: string | null;
  reason: string;
}

export interface WalHorizon {
  /** Backup id the continuous range starts at; null with no kept backups. */
  anchor: string | null;
  ranges: SegmentRange[];
  /** History files of this timeline and later are kept; null: all. */
  keepHistoryFrom: number | null;
  /** True when nothing may be pruned (no kept backups). */
  keepAll: boolean;
}

export interface WalHorizonInput {
  kept: readonly BackupSpan[];
  pitrWindow: string;
  now: string;
  walSegmentSize: number;
  /** Timelines that have WAL in the archive. */
  timelines: readonly number[];
  /** IANA zone of the window's calendar arithmetic (the retention policy's); default the system zone. */
  zone?: string;
}

interface Position {
  timeline: number;
  segno: bigint;
}

/** Timeline and segment number of a WAL file name (segment, .partial or .backup). */
export function segmentPosition(name: string, walSegmentSize: number): Position | undefined {
  const file = parseSegmentFileName(name);
  return file && { timeline: file.timeline, segno: segmentNumber(file, walSegmentSize) };
}

function position(name: string, size: number): Position {
  const p = segmentPosition(name, size);
  if (!p) throw new RetentionPolicyError(`'${name}' is not a WAL segment name`);
  return p;
}

export function planWalHorizon(input: WalHorizonInput): WalHorizon {
  const size = input.walSegmentSize;
  if (input.kept.length === 0)
    return { anchor: null, ranges: [], keepHistoryFrom: null, keepAll: true };
  const start = windowStart(input.pitrWindow, input.now, input.zone);
  const byStart = [...input.kept].sort((a, b) => {
    const pa = position(a.startWal, size);
    const pb = position(b.startWal, size);
    return pa.segno < pb.segno ? -1 : pa.segno > pb.segno ? 1 : a.timeline - b.timeline;
  });
  // The same base retention keeps (window-base.ts), so the two always agree.
  const anchor = findWindowBase(withWholeChains(byStart), (b) => b.stopTime, start) ?? byStart[0];
  if (!anchor) return { anchor: null, ranges: [], keepHistoryFrom: null, keepAll: true };
  const anchorStart = position(anchor.startWal, size);

  const ranges: SegmentRange[] = [];
  const timelines = [...new Set([anchor.timeline, ...input.timelines])]
    .filter((t) => t >= anchor.timeline)
    .sort((a, b) => a - b);
  for (const timeline of timelines) {
    ranges.push({
      timeline,
      from: segmentName(timeline, anchorStart.segno, size),
      to: null,
      reason: `point-in-time window ${input.pitrWindow} from backup ${anchor.id}`,
    });
  }
  for (const backup of byStart) {
    if (backup === anchor) continue;
    const start = position(backup.startWal, size);
    if (start.segno >= anchorStart.segno && backup.timeline >= anchor.timeline) continue; // inside the continuous range
    ranges.push({
      timeline: backup.timeline,
      from: backup.startWal,
      to: backup.stopWal,
      reason: `backup ${backup.id}`,
    });
  }
  const keepHistoryFrom = Math.min(...ranges.map((r) => r.timeline));
  return { anchor: anchor.id, ranges, keepHistoryFrom, keepAll: false };
}

/** Whether the horizon keeps an archived WAL file (segment, .partial, .backup or .history). */
export function isWalKept(name: string, horizon: WalHorizon, walSegmentSize: number): boolean {
  if (horizon.keepAll) return true;
  const file = parseWalFileName(name);
  if (file?.kind === "history") return file.timeline >= (horizon.keepHistoryFrom ?? 0);
  const at = segmentPosition(name, walSegmentSize);
  if (!at) return true; // not a WAL name: never pruned by the WAL horizon
  return horizon.ranges.some((range) => {
    if (range.timeline !== at.timeline) return false;
    const from = position(range.from, walSegmentSize).segno;
    const to = range.to === null ? undefined : position(range.to, walSegmentSize).segno;
    return at.segno >= from && (to === undefined || at.segno <= to);
  });
}
