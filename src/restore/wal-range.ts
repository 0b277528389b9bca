/**
 * The WAL a recovery needs, and its gaps. Pure.
 *
 * From the backup's start segment, each segment taken from the timeline the path uses
 * for it (a switch segment comes from the new timeline), up to: the backup's stop
 * segment (immediate); the segment holding the target LSN (past the end of the archive
 * is refused); for a time, the first segment stored at least 5 minutes after it (a
 * margin for upload delay and clock skew; its WAL reaches past the target); otherwise
 * the newest archived segment on the path. Every missing segment in that range is a gap.
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import type { TimelineStep } from "../wal/history.js";
import {
  parseLsn,
  parseSegmentFileName,
  parseWalFileName,
  segmentName,
  segmentNumber,
} from "../wal/names.js";
import type { RestoreFacts } from "./facts.js";
import { type Chosen, refuse } from "./refusal.js";
import { describeTarget, type RestoreTarget } from "./target.js";

/** How far past a target time the gap check reaches, in archive (object store) time. */
const TIME_MARGIN_MS = 5 * 60_000;

export interface WalRange {
  first: string;
  last: string;
  count: number;
  bytes: number;
  segments: string[];
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
  const timelineOf = (seg: bigint): number => {
    let chosen = path[0]?.timeline ?? backup.timeline;
    for (const step of path) if (segOf(step.begin) <= seg) chosen = step.timeline;
    return chosen;
  };
  const nameOf = (seg: bigint) => segmentName(timelineOf(seg), seg, size);

  // The newest archived segment the path could use, from the backup's start on.
  let newest = stopSeg;
  for (const name of facts.wal.keys()) {
    const file = parseWalFileName(name);
    if (file?.kind !== "segment") continue;
    const seg = segmentNumber(file, size);
    if (seg > newest && timelineOf(seg) === file.timeline) newest = seg;
  }
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
      endSeg = newest;
      // A margin for upload delays and clock skew between the database and the store:
      // the check reaches well past the segment that holds the target.
      const at = target.at + TIME_MARGIN_MS;
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
    },
  };
}
