/**
 * The WAL a recovery needs, and its gaps. Pure.
 *
 * From the backup's start segment, each segment taken from the timeline the path uses
 * for it (a switch segment comes from the new timeline), up to: the backup's stop
 * segment (immediate); the segment holding the target LSN (past the end of the archive
 * is refused); for a time (in the future, or past the newest time the archive can reach
 * is refused: archive-end.ts), the first segment stored at least 5 minutes after it (a
 * margin for upload delay and clock skew: the store's time says when a segment arrived,
 * not where its WAL ends; its WAL reaches past the target); otherwise the newest archived
 * segment on the path. Every missing segment in that range is a gap.
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import type { TimelineStep } from "../wal/history.js";
import { parseLsn, parseSegmentFileName, segmentName, segmentNumber } from "../wal/names.js";
import {
  type ArchiveEnd,
  archiveEnd,
  newestOnPath,
  STORAGE_CLOCK_MARGIN_MS,
  timelineOfSegment,
  unreachableTime,
} from "./archive-end.js";
import type { RestoreFacts } from "./facts.js";
import { type Chosen, refuse } from "./refusal.js";
import { describeTarget, type RestoreTarget } from "./target.js";

export interface WalRange {
  first: string;
  last: string;
  count: number;
  bytes: number;
  segments: string[];
  /** The newest archived segment on the path, and the newest time it lets a recovery reach. */
  end: ArchiveEnd;
}

export function walRange(
  facts: RestoreFacts,
  backup: BackupManifest,
  path: TimelineStep[],
  target: RestoreTarget,
): Chosen<WalRange> {
  const size = backup.walSegmentSize;
  const start = parseSegmentFileName(backup.startWal);
  const stop = parseSegmentFileName(backup.stopWal);
  if (!start || !stop) return refuse(`backup ${backup.id} has unreadable WAL names`);
  const startSeg = segmentNumber(start, size);
  const stopSeg = segmentNumber(stop, size);
  const segOf = (lsn: bigint) => lsn / BigInt(size);
  /** The timeline the path reads a segment from: the last step that begins at or before it. */
  const timelineOf = (seg: bigint) => timelineOfSegment(path, seg, size, backup.timeline);
  const nameOf = (seg: bigint) => segmentName(timelineOf(seg), seg, size);

  // The newest archived segment the path could use, from the backup's start on.
  const newest = newestOnPath(facts.wal.keys(), path, size, stopSeg, backup.timeline);
  const end = archiveEnd(nameOf(newest), timelineOf(newest), facts.wal.get(nameOf(newest)));
  let endSeg: bigint;
  switch (target.kind) {
    case "immediate":
      endSeg = stopSeg;
      break;
    case "lsn": {
      const lsn = parseLsn(target.lsn);
      if (lsn === undefined) return refuse(`'${target.lsn}' is not an LSN`);
      if (segOf(lsn) > newest) {
        return refuse(
          `LSN ${target.lsn} is past the end of the archive (the newest segment on the path is ${nameOf(newest)})`,
        );
      }
      endSeg = segOf(lsn) > stopSeg ? segOf(lsn) : stopSeg;
      break;
    }
    case "time": {
      const why = unreachableTime(target.at, end, facts.listedAt);
      if (why !== undefined) {
        return {
          ok: false,
          refusal: {
            reasons: [`${describeTarget(target)} cannot be reached: ${why}`],
            gaps: [],
            archiveEnd: end,
          },
        };
      }
      endSeg = newest;
      // A margin for upload delays and clock skew between the database and the store:
      // the check reaches well past the segment that holds the target.
      const at = target.at + STORAGE_CLOCK_MARGIN_MS;
      for (let seg = stopSeg; seg <= newest; seg++) {
        const storedAt = facts.wal.get(nameOf(seg))?.storedAt;
        if (storedAt !== undefined && Date.parse(storedAt) >= at) {
          endSeg = seg;
          break;
        }
      }
      break;
    }
    default:
      endSeg = newest;
  }

  const segments: string[] = [];
  const gaps: string[] = [];
  let bytes = 0;
  for (let seg = startSeg; seg <= endSeg; seg++) {
    const name = nameOf(seg);
    const object = facts.wal.get(name);
    if (object) {
      segments.push(name);
      bytes += object.size;
    } else gaps.push(name);
  }
  if (gaps.length > 0) {
    return refuse(
      `${gaps.length} WAL segment${gaps.length === 1 ? " is" : "s are"} missing between backup ${backup.id} and ${describeTarget(target)}: ${gaps.slice(0, 5).join(", ")}${gaps.length > 5 ? ", ..." : ""}`,
      gaps,
    );
  }
  // wal-fetch refuses a name stored with two contents: so does the plan, naming them.
  const conflicting = segments.filter((name) => facts.conflicts?.has(name));
  if (conflicting.length > 0) {
    const which = conflicting
      .slice(0, 5)
      .map((name) => `${name} (${(facts.conflicts?.get(name) ?? []).join(" and ")})`);
    return refuse(
      `${conflicting.length} WAL segment${conflicting.length === 1 ? " is" : "s are"} archived with different contents: ${which.join(", ")}${conflicting.length > 5 ? ", ..." : ""}; delete the copy the surviving cluster did not write`,
    );
  }
  return {
    ok: true,
    value: {
      first: segments[0] ?? backup.startWal,
      last: segments.at(-1) ?? backup.stopWal,
      count: segments.length,
      bytes,
      segments,
      end,
    },
  };
}
