/**
 * The base of the point-in-time window: the newest backup that ended at or before the
 * window's oldest second (now - window). A restore to that second starts from it; every
 * later backup ended too late. Retention keeps it (reason "base of the point-in-time
 * window") and the WAL horizon anchors there, so a prune never shortens the window unless
 * the user says so. Pure; both use this one function so they always agree on the base.
 */
import { DateTime } from "luxon";
import { parseRetentionDuration } from "./duration.js";
import { RetentionPolicyError } from "./errors.js";

/** The window's oldest second: now - window (calendar arithmetic in `zone`). */
export function windowStart(pitrWindow: string, now: string, zone?: string): DateTime {
  const at = DateTime.fromISO(now, { zone: zone ?? "system" });
  if (!at.isValid) throw new RetentionPolicyError(`'${now}' is not an ISO 8601 time`);
  return at.minus(parseRetentionDuration(pitrWindow));
}

/** A time; one without an offset is in the window's zone. */
function endTime(value: string, start: DateTime): DateTime {
  const time = DateTime.fromISO(value, { zone: start.zone });
  if (!time.isValid) throw new RetentionPolicyError(`'${value}' is not an ISO 8601 time`);
  return time;
}

/**
 * The newest of `items` that ended at or before `start` (ties: the greatest id), or
 * undefined when none did (the repository is younger than the window).
 */
export function findWindowBase<T extends { id: string }>(
  items: readonly T[],
  endOf: (item: T) => string,
  start: DateTime,
): T | undefined {
  let base: { item: T; end: number } | undefined;
  for (const item of items) {
    const end = endTime(endOf(item), start).toMillis();
    if (end > start.toMillis()) continue;
    if (!base || end > base.end || (end === base.end && item.id > base.item.id))
      base = { item, end };
  }
  return base?.item;
}

/**
 * The oldest second the kept backups can restore to: the end of the newest kept one that
 * ended at or before the window's start (the WAL horizon's anchor), else the end of the
 * one that ended first; undefined with nothing kept.
 */
export function restorableFrom<T extends { id: string }>(
  kept: readonly T[],
  endOf: (item: T) => string,
  start: DateTime,
): string | undefined {
  const base = findWindowBase(kept, endOf, start);
  if (base) return endOf(base);
  let first: { item: T; end: number } | undefined;
  for (const item of kept) {
    const end = endTime(endOf(item), start).toMillis();
    if (!first || end < first.end) first = { item, end };
  }
  return first && endOf(first.item);
}

/** Whether the window is shorter than asked: restorable only from after its start. */
export function isShortened(from: string | undefined, start: DateTime): boolean {
  return from === undefined || endTime(from, start) > start;
}

/**
 * The items whose chain (every backup an incremental needs to restore) is among `items`:
 * only those can be the window's base. Retention and the WAL horizon filter alike.
 */
export function withWholeChains<T extends { id: string; chain?: readonly string[] | undefined }>(
  items: readonly T[],
): T[] {
  const ids = new Set(items.map((i) => i.id));
  return items.filter((i) => (i.chain ?? []).every((id) => ids.has(id)));
}
