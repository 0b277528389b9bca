/**
 * Where the archive ends along a timeline path, and the newest time a recovery along it
 * can reach. Pure.
 *
 * Recovery replays the archived segments up to the newest one on the path, so nothing
 * written after that segment was pushed can be recovered: its push time (metadata
 * `pgha-pushed-at`, the database host's clock) is an upper bound of every commit the
 * archive holds on that path. PostgreSQL stops at a target time only on a commit after
 * it; a target at or after that bound can never be reached ("recovery ended before
 * configured recovery target was reached"). A target before it may be.
 *
 * Segments pushed by an older pgha carry no push time: the store's own time (LastModified,
 * mtime) stands in, on another clock, so only a target more than STORAGE_CLOCK_MARGIN_MS
 * past it is refused.
 */
import type { TimelineStep } from "../wal/history.js";
import { parseWalFileName, segmentName, segmentNumber } from "../wal/names.js";
import type { WalObject } from "./facts.js";

/** Skew and upload delay allowed between the database's clock and the store's. */
export const STORAGE_CLOCK_MARGIN_MS = 5 * 60_000;

export interface ArchiveEnd {
  timeline: number;
  /** The newest archived segment on the path. */
  segment: string;
  /** When it was pushed (clock "database") or stored (clock "storage"); unknown: undefined. */
  time: string | undefined;
  clock: "database" | "storage";
}

/** The timeline a recovery along `path` reads segment `seg` from (a switch segment: the new one). */
export function timelineOfSegment(
  path: TimelineStep[],
  seg: bigint,
  size: number,
  fallback: number,
): number {
  let chosen = path[0]?.timeline ?? fallback;
  for (const step of path) if (step.begin / BigInt(size) <= seg) chosen = step.timeline;
  return chosen;
}

/** The newest archived segment number the path can use, at least `from`. */
export function newestOnPath(
  names: Iterable<string>,
  path: TimelineStep[],
  size: number,
  from: bigint,
  fallback: number,
): bigint {
  let newest = from;
  for (const name of names) {
    const file = parseWalFileName(name);
    if (file?.kind !== "segment") continue;
    const seg = segmentNumber(file, size);
    if (seg > newest && timelineOfSegment(path, seg, size, fallback) === file.timeline)
      newest = seg;
  }
  return newest;
}

/** The newest segment on each path, by name: the ones whose push time a plan may need. */
export function pathEndSegments(
  names: string[],
  paths: TimelineStep[][],
  size: number,
): Set<string> {
  const ends = new Set<string>();
  for (const path of paths) {
    const last = path.at(-1)?.timeline ?? 1;
    const newest = newestOnPath(names, path, size, -1n, last);
    if (newest < 0n) continue;
    ends.add(segmentName(timelineOfSegment(path, newest, size, last), newest, size));
  }
  return ends;
}

export function archiveEnd(
  segment: string,
  timeline: number,
  object: WalObject | undefined,
): ArchiveEnd {
  if (object?.pushedAt !== undefined)
    return { timeline, segment, time: object.pushedAt, clock: "database" };
  return { timeline, segment, time: object?.storedAt, clock: "storage" };
}

/**
 * Why a target time cannot be reached, or undefined when it may be: it is in the future
 * (after `listedAt`, when the archive was read), or at or after the newest time the
 * archive can reach on the path.
 */
export function unreachableTime(
  at: number,
  end: ArchiveEnd,
  listedAt: string | undefined,
): string | undefined {
  if (listedAt !== undefined && at > Date.parse(listedAt))
    return `it is in the future (the archive was read at ${listedAt})`;
  if (end.time === undefined) return undefined;
  const bound = Date.parse(end.time);
  if (end.clock === "database" && at >= bound) {
    return `the newest restorable time on timeline ${end.timeline} is before ${end.time}: the archive on this path ends with segment ${end.segment}, pushed then; WAL written after it is not archived (yet), so recovery would end before the target`;
  }
  if (end.clock === "storage" && at > bound + STORAGE_CLOCK_MARGIN_MS) {
    return `the newest restorable time on timeline ${end.timeline} is before about ${end.time}: the archive on this path ends with segment ${end.segment}, stored then (the store's clock: it was pushed by an older pgha), so recovery would end before the target`;
  }
  return undefined;
}
