/**
 * Pure plans for deleting one backup or dump set by hand (`pgha backup delete`, `pgha dump
 * delete`): what goes, or why it must not. A pinned item is never deleted. A backup the
 * point-in-time window needs is refused unless `allowShorterWindow` (prune's flag): the
 * window's base (retention/window-base.ts, the backup prune keeps), the only backup, or one
 * whose loss makes the kept backups restorable only from later than before. Only the
 * item's own objects go; the WAL no remaining backup needs is prune's to delete.
 * A backup that incremental backups need (their chain names it) is refused: without it
 * they cannot be restored. With `withDependents` it goes together with them (listed in
 * the plan, newest first, each deleted before the backups it needs), under the same
 * rules for all of them: none pinned, and the window as above over what remains.
 */
import { restorableFrom, windowStart } from "../../retention/index.js";
import { findWindowBase } from "../../retention/window-base.js";
import type { BackupEntry, CatalogEntry } from "../prune/plan-prune.js";

export type DeletePlan =
  | {
      kind: "delete";
      entry: CatalogEntry;
      /** Incremental backups that need `entry`, deleted before it (newest first). */
      dependents?: CatalogEntry[];
      /** Backups: the oldest second the remaining backups restore to, before and after. */
      window?: { restorableFrom: string | null; becomes: string | null; shortened: boolean };
    }
  | { kind: "refused"; entry: CatalogEntry; reason: string; hint: string };

export interface BackupDeleteOptions {
  pitrWindow: string;
  now: string;
  /** IANA zone of the window's calendar arithmetic (the retention zone). */
  zone?: string;
  allowShorterWindow: boolean;
  /** Delete the incremental backups that need this one too (--with-dependents). */
  withDependents?: boolean;
}

function refusePinned(entry: CatalogEntry, noun: "backup" | "dump"): DeletePlan {
  return {
    kind: "refused",
    entry,
    reason: `${noun === "backup" ? "backup" : "dump set"} ${entry.id} is pinned`,
    hint: `unpin it first ('pgha ${noun} unpin ${entry.id}'), then delete it`,
  };
}

export function planBackupDelete(
  backups: readonly BackupEntry[],
  entry: BackupEntry,
  options: BackupDeleteOptions,
): DeletePlan {
  if (entry.pinned) return refusePinned(entry, "backup");
  const dependents = backups
    .filter((b) => b.chain.includes(entry.id))
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  if (dependents.length > 0 && options.withDependents !== true) {
    const ids = dependents.map((d) => d.id);
    return {
      kind: "refused",
      entry,
      reason: `backup ${entry.id} is needed by ${ids.length} incremental backup${ids.length === 1 ? "" : "s"} (${ids.join(", ")}): without it ${ids.length === 1 ? "it" : "they"} cannot be restored`,
      hint: "add --with-dependents to delete it together with them (the plan lists them first)",
    };
  }
  const pinnedDependent = dependents.find((d) => d.pinned);
  if (pinnedDependent) {
    return {
      kind: "refused",
      entry,
      reason: `backup ${entry.id} is needed by the pinned backup ${pinnedDependent.id}`,
      hint: `unpin it first ('pgha backup unpin ${pinnedDependent.id}'), then delete them`,
    };
  }
  const going = new Set([entry.id, ...dependents.map((d) => d.id)]);
  const more = dependents.length > 0 ? { dependents } : {};
  const start = windowStart(options.pitrWindow, options.now, options.zone);
  const endOf = (b: BackupEntry) => b.stopTime;
  const rest = backups.filter((b) => !going.has(b.id));
  const before = restorableFrom(backups, endOf, start) ?? null;
  const after = restorableFrom(rest, endOf, start) ?? null;
  const shortened = after === null || (before !== null && Date.parse(after) > Date.parse(before));
  const window = { restorableFrom: before, becomes: after, shortened };
  if (options.allowShorterWindow) return { kind: "delete", entry, ...more, window };
  const hint =
    "add --allow-shorter-window to delete it anyway (the point-in-time window becomes shorter)";
  if (rest.length === 0) {
    return {
      kind: "refused",
      entry,
      reason:
        dependents.length > 0
          ? `backup ${entry.id} and its dependents are the cluster's only backups: without them nothing can be restored`
          : `backup ${entry.id} is the cluster's only backup: without it nothing can be restored`,
      hint,
    };
  }
  // The base stays refused even when an older backup would take its place: the WAL from
  // that older one to the base may already be pruned (the horizon anchored at the base).
  const base = findWindowBase(backups, endOf, start)?.id;
  if (base !== undefined && going.has(base)) {
    return {
      kind: "refused",
      entry,
      reason: `backup ${base} is the base of the point-in-time window ${options.pitrWindow}: a restore to any second since ${start.toUTC().toISO()} starts from it`,
      hint,
    };
  }
  if (shortened) {
    return {
      kind: "refused",
      entry,
      reason: `deleting backup ${entry.id}${dependents.length > 0 ? " and its dependents" : ""} shortens the point-in-time window: restorable since ${before}, then only since ${after}`,
      hint,
    };
  }
  return { kind: "delete", entry, ...more, window };
}

/** A dump set has no window: only a pin refuses its deletion. */
export function planDumpDelete(entry: CatalogEntry): DeletePlan {
  return entry.pinned ? refusePinned(entry, "dump") : { kind: "delete", entry };
}
