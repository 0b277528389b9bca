/**
 * planRestore: pure. From the catalog (backups, timeline histories, archived WAL) and a
 * target, choose the backup, follow the timeline path, list the WAL the recovery needs
 * and report every gap, before anything is downloaded.
 *
 * - Target timeline: a number; "latest" (the newest timeline the archive knows);
 *   "current" (the chosen backup's own timeline).
 * - A backup is on the path when its timeline is on it and it ended before that
 *   timeline branched off. Of those, the newest that can reach the target is chosen:
 *   for a time, one that finished at or before it; for an LSN, one whose stop LSN is at
 *   or before it; for latest, immediate, an xid or a restore point, the newest (the
 *   repository cannot know where an xid or a name is: the plan says so).
 * - WAL: from the backup's start segment, each segment taken from the timeline the path
 *   uses for it (a switch segment comes from the new timeline), up to: the backup's stop
 *   segment (immediate); the segment holding the target LSN (past the end of the archive
 *   is refused); for a time, the first segment stored at least 5 minutes after it (a
 *   margin for upload delay and clock skew; its WAL reaches past the target); otherwise
 *   the newest archived segment on the path. Every missing segment in that range is a gap.
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import { type TimelineStep, timelinePath } from "../wal/history.js";
import {
  formatLsn,
  historyFileName,
  parseLsn,
  parseSegmentFileName,
  parseWalFileName,
  segmentName,
  segmentNumber,
} from "../wal/names.js";
import type { RestoreFacts } from "./facts.js";

/** How far past a target time the gap check reaches, in archive (object store) time. */
const TIME_MARGIN_MS = 5 * 60_000;

export type RestoreTarget =
  | { kind: "latest" }
  | { kind: "immediate" }
  | { kind: "time"; time: string }
  | { kind: "lsn"; lsn: string }
  | { kind: "xid"; xid: string }
  | { kind: "name"; name: string };

export type TargetTimeline = "latest" | "current" | number;
export type TargetAction = "promote" | "pause" | "shutdown";

export interface RestoreRequest {
  target: RestoreTarget;
  timeline: TargetTimeline;
  exclusive: boolean;
  action: TargetAction;
  backupId: string | undefined;
}

export interface RestorePlan {
  backup: BackupManifest;
  targetTimeline: number;
  path: { timeline: number; begin: string; end: string | null }[];
  wal: { first: string; last: string; count: number; bytes: number; segments: string[] };
  gaps: string[];
  notes: string[];
  /** recovery_target_* settings, in order; restore_command is added by the applier. */
  settings: [string, string][];
  downloadBytes: number;
}

/** The plan cannot succeed; reasons says why (and lists gaps). */
export class RestorePlanError extends Error {
  constructor(
    message: string,
    readonly gaps: string[] = [],
  ) {
    super(message);
  }
}

function describeTarget(target: RestoreTarget): string {
  switch (target.kind) {
    case "latest":
      return "the end of the archive";
    case "immediate":
      return "the end of the backup (consistency)";
    case "time":
      return `time ${target.time}`;
    case "lsn":
      return `LSN ${target.lsn}`;
    case "xid":
      return `transaction ${target.xid}`;
    case "name":
      return `restore point '${target.name}'`;
  }
}

function knownTimelines(facts: RestoreFacts): number[] {
  const set = new Set<number>([
    1,
    ...facts.histories.keys(),
    ...facts.backups.map((b) => b.timeline),
  ]);
  for (const name of facts.wal.keys()) set.add(Number.parseInt(name.slice(0, 8), 16));
  return [...set].sort((a, b) => a - b);
}

function onPath(backup: BackupManifest, path: TimelineStep[]): boolean {
  const step = path.find((s) => s.timeline === backup.timeline);
  const stop = parseLsn(backup.stopLsn);
  return step !== undefined && stop !== undefined && (step.end === null || stop <= step.end);
}

export function planRestore(facts: RestoreFacts, request: RestoreRequest): RestorePlan {
  if (facts.backups.length === 0)
    throw new RestorePlanError("the repository has no backups of this cluster");
  const target = request.target;
  const notes: string[] = [];

  const pathFor = (timeline: number): TimelineStep[] => {
    if (timeline > 1 && !facts.histories.has(timeline)) {
      throw new RestorePlanError(
        `timeline ${timeline} has no history file (${historyFileName(timeline)}) in the archive`,
      );
    }
    return timelinePath(timeline, facts.histories.get(timeline));
  };

  let candidates: BackupManifest[];
  let targetTimeline: number;
  let path: TimelineStep[];
  if (request.timeline === "current") {
    // Each backup recovers along its own timeline.
    candidates = facts.backups;
    targetTimeline = 0;
    path = [];
  } else {
    targetTimeline =
      request.timeline === "latest" ? Math.max(...knownTimelines(facts)) : request.timeline;
    path = pathFor(targetTimeline);
    candidates = facts.backups.filter((b) => onPath(b, path));
  }

  const stopOf = (b: BackupManifest) => parseLsn(b.stopLsn) ?? 0n;
  candidates = [...candidates].sort((a, b) =>
    stopOf(a) < stopOf(b) ? 1 : stopOf(a) > stopOf(b) ? -1 : b.id.localeCompare(a.id),
  );
  const reaches = (b: BackupManifest): boolean => {
    if (target.kind === "time") return Date.parse(b.stopTime) <= Date.parse(target.time);
    if (target.kind === "lsn") return stopOf(b) <= (parseLsn(target.lsn) ?? 0n);
    return true;
  };

  let backup: BackupManifest | undefined;
  if (request.backupId !== undefined) {
    backup = facts.backups.find((b) => b.id === request.backupId);
    if (!backup) throw new RestorePlanError(`there is no backup ${request.backupId}`);
    if (!candidates.includes(backup)) {
      throw new RestorePlanError(
        `backup ${backup.id} is not on the path to timeline ${targetTimeline} (it is on timeline ${backup.timeline}, past the branch point)`,
      );
    }
    if (!reaches(backup))
      throw new RestorePlanError(
        `backup ${backup.id} ended after ${describeTarget(target)}: it cannot reach it`,
      );
  } else {
    backup = candidates.find(reaches);
    if (!backup) {
      const where =
        request.timeline === "current" ? "" : ` on the path to timeline ${targetTimeline}`;
      throw new RestorePlanError(
        `no backup finished at or before ${describeTarget(target)}${where}; the oldest ended ${facts.backups[0]?.stopTime} at ${facts.backups[0]?.stopLsn}`,
      );
    }
  }
  if (request.timeline === "current") {
    targetTimeline = backup.timeline;
    path = pathFor(targetTimeline);
  }
  if (target.kind === "xid" || target.kind === "name") {
    notes.push(
      `the repository cannot know where ${describeTarget(target)} is: backup ${backup.id} is the newest on the path; if the target lies before its end (${backup.stopTime}), recovery stops with an error: choose an older one with --backup`,
    );
  }

  const size = backup.walSegmentSize;
  const start = parseSegmentFileName(backup.startWal);
  const stop = parseSegmentFileName(backup.stopWal);
  if (!start || !stop) throw new RestorePlanError(`backup ${backup.id} has unreadable WAL names`);
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
      if (lsn === undefined) throw new RestorePlanError(`'${target.lsn}' is not an LSN`);
      if (segOf(lsn) > newest) {
        throw new RestorePlanError(
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
      const at = Date.parse(target.time) + TIME_MARGIN_MS;
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
    throw new RestorePlanError(
      `${gaps.length} WAL segment${gaps.length === 1 ? " is" : "s are"} missing between backup ${backup.id} and ${describeTarget(target)}: ${gaps.slice(0, 5).join(", ")}${gaps.length > 5 ? ", ..." : ""}`,
      gaps,
    );
  }

  const settings: [string, string][] = [];
  switch (target.kind) {
    case "immediate":
      settings.push(["recovery_target", "immediate"]);
      break;
    case "time":
      settings.push(["recovery_target_time", target.time]);
      break;
    case "lsn":
      settings.push(["recovery_target_lsn", target.lsn]);
      break;
    case "xid":
      settings.push(["recovery_target_xid", target.xid]);
      break;
    case "name":
      settings.push(["recovery_target_name", target.name]);
      break;
    case "latest":
      break;
  }
  // Written every time, defaults included: a value left in postgresql.conf must not apply.
  settings.push(["recovery_target_inclusive", request.exclusive ? "false" : "true"]);
  // PostgreSQL 11 and older read "current" as 0, which means latest: write the number.
  const timelineValue =
    request.timeline === "current"
      ? backup.pgVersionNum >= 120000
        ? "current"
        : String(backup.timeline)
      : String(request.timeline);
  settings.push(["recovery_target_timeline", timelineValue]);
  settings.push(["recovery_target_action", request.action]);

  return {
    backup,
    targetTimeline,
    path: path.map((s) => ({
      timeline: s.timeline,
      begin: formatLsn(s.begin),
      end: s.end === null ? null : formatLsn(s.end),
    })),
    wal: {
      first: segments[0] ?? backup.startWal,
      last: segments.at(-1) ?? backup.stopWal,
      count: segments.length,
      bytes,
      segments,
    },
    gaps,
    notes,
    settings,
    downloadBytes: backup.storedBytes + bytes,
  };
}
