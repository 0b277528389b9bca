/**
 * Grandfather-father-son retention: a pure function from items, a policy and "now" to a
 * plan that says, for every item, keep or delete and why. No I/O, no clock, no node:*.
 *
 * Semantics (those of restic's `forget --keep-*`, written down):
 *
 * - Items are ordered newest first (time, then id, both descending), so the plan does not
 *   depend on the input order.
 * - `last N` keeps the N newest items.
 * - `hourly|daily|weekly|monthly|yearly N`: each item falls into one period of that size
 *   in the policy's time zone (weeks are ISO weeks, Monday to Sunday, numbered by ISO
 *   week-year). Walking from newest to oldest, an item is kept when its period differs
 *   from the period of the item before it, until N periods have been kept. So the newest
 *   item of each of the N most recent periods THAT CONTAIN AN ITEM is kept; empty periods
 *   do not count. Reasons name the period: `daily 2026-11-20`, `weekly 2026-W47`,
 *   `monthly 2026-10`, `yearly 2026`, `hourly 2026-11-20 13h`.
 * - `within D` keeps every item whose time is at or after now - D (calendar arithmetic
 *   in the policy's zone, so "1m" is one calendar month).
 * - The point-in-time window (when given: prune's backups, retention simulate): the newest
 *   item that ended (`end`, else `time`) at or before now - window is kept, reason
 *   `base of the point-in-time window`, so that the window's oldest second stays
 *   restorable whatever the other rules say (window-base.ts). With `allowShorter` the rule
 *   is off; the plan's `window` then says from when the kept items can still restore.
 * - One item may satisfy several rules; it then has several reasons.
 * - Safety: pinned items are always kept (`pinned`); the newest item is always kept
 *   (`newest`); a policy with no rule that keeps anything is refused.
 * - Chains (incremental backups): an item restores only with every item of its `chain`,
 *   so keeping an item keeps its whole chain, whatever kept it (a rule, a pin, the
 *   window's base, newest). The rules above pick among ALL items, fulls and incrementals
 *   alike (each is a restore point a user sees in `backup list`); an item kept only
 *   because a kept one needs it gets the reason `needed by <id> (incr)` (the newest kept
 *   item that needs it, `and N more` when several do) and uses up no rule's slot: the
 *   rules are decided first, the chains closed over after. A chain id that is not among
 *   the items is ignored here (that backup is gone; restore reports the broken chain).
 */
import { DateTime, type Duration } from "luxon";
import { parseRetentionDuration } from "./duration.js";
import { RetentionPolicyError } from "./errors.js";
import {
  findWindowBase,
  isShortened,
  restorableFrom,
  windowStart,
  withWholeChains,
} from "./window-base.js";

export interface RetentionItem {
  id: string;
  /** ISO 8601 time with zone (or Z). */
  time: string;
  /** When the item ended (a backup's stop time), ISO 8601; default `time`. */
  end?: string;
  pinned?: boolean;
  /** "incr": restorable only together with every item of `chain`. Absent: a full. */
  type?: "full" | "incr";
  /** Ids of the items this one needs to restore (full first, then its parent's chain). */
  chain?: readonly string[];
}

/** The point-in-time window the plan must keep restorable. */
export interface PitrWindow {
  /** How far back every second stays restorable: a duration as for `within`. */
  duration: string;
  /** Let the other rules delete the window's base: the window may then become shorter. */
  allowShorter?: boolean;
}

/** What the plan does to the point-in-time window. */
export interface WindowReport {
  duration: string;
  /** now - duration: the oldest second the window asks for. */
  start: string;
  /** The newest item that ended at or before start; null when none did yet. */
  base: string | null;
  /** Whether the plan keeps the base. */
  baseKept: boolean;
  /** The oldest second the kept items can restore to (null: nothing kept). */
  restorableFrom: string | null;
  /** True when restorableFrom is later than start: the window is shorter than asked. */
  shortened: boolean;
}

export const PERIOD_RULES = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
export type PeriodRule = (typeof PERIOD_RULES)[number];

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** A duration (src/config/duration.ts): "90min", "36h", "7d", "2w", "3mo", "1y", or ISO 8601 ("P7D"). */
  within?: string;
  /** IANA zone whose calendar defines the periods; default the system zone. */
  zone?: string;
}

export const DEFAULT_POLICY: RetentionPolicy = { daily: 7, weekly: 7, monthly: 12, yearly: 0 };

export interface PlannedItem {
  id: string;
  time: string;
  pinned: boolean;
  keep: boolean;
  reasons: string[];
}

export interface RetentionPlan {
  /** Every item, newest first. */
  items: PlannedItem[];
  keep: string[];
  delete: string[];
  /** Present when the plan was made with a point-in-time window. */
  window?: WindowReport;
}

export const WINDOW_BASE_REASON = "base of the point-in-time window";

const PERIOD_FORMAT: Record<PeriodRule, string> = {
  hourly: "yyyy-MM-dd HH'h'",
  daily: "yyyy-MM-dd",
  weekly: "kkkk-'W'WW",
  monthly: "yyyy-MM",
  yearly: "yyyy",
};

export function checkPolicy(policy: RetentionPolicy): void {
  const counts: [string, number | undefined][] = [
    ["last", policy.last],
    ...PERIOD_RULES.map((rule): [string, number | undefined] => [rule, policy[rule]]),
  ];
  for (const [name, count] of counts) {
    if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
      throw new RetentionPolicyError(`${name} must be a whole number of 0 or more, not ${count}`);
    }
  }
  if (policy.zone !== undefined && !DateTime.now().setZone(policy.zone).isValid) {
    throw new RetentionPolicyError(
      `'${policy.zone}' is not a time zone (use an IANA name such as Europe/Brussels)`,
    );
  }
  if (policy.within !== undefined) parseRetentionDuration(policy.within);
  const keepsSomething =
    counts.some(([, count]) => (count ?? 0) > 0) || policy.within !== undefined;
  if (!keepsSomething) {
    throw new RetentionPolicyError(
      "the policy keeps nothing: set at least one of last, hourly, daily, weekly, monthly, yearly or within",
    );
  }
}

function toTime(value: string, zone: string | undefined): DateTime {
  const time = DateTime.fromISO(value, { setZone: false, zone: zone ?? "system" });
  if (!time.isValid) throw new RetentionPolicyError(`'${value}' is not an ISO 8601 time`);
  return time;
}

/**
 * Items given by hand (retention simulate) whose chains no backup can have: an incremental
 * names the backups it needs (its full first), a full names none, none names itself,
 * another twice, or one newer than itself. (A member missing from the items is allowed:
 * that backup is gone.) Not for prune: its items are the repository's manifests, whose
 * chains are checked where they are read, and whose times come from the clocks of the
 * hosts that took them (a clock set back must not stop every prune).
 */
export function checkItemChains(items: readonly RetentionItem[], zone?: string): void {
  for (const item of items) checkChain(item);
  const timeOf = new Map(items.map((item) => [item.id, toTime(item.time, zone)]));
  for (const item of items)
    for (const member of item.chain ?? []) {
      const at = timeOf.get(member);
      if (at && at > (timeOf.get(item.id) as DateTime))
        throw new RetentionPolicyError(
          `item '${item.id}' names '${member}' in its chain, which is newer than it`,
        );
    }
}

function checkChain(item: RetentionItem): void {
  const chain = item.chain ?? [];
  if (item.type === "incr" && chain.length === 0)
    throw new RetentionPolicyError(`item '${item.id}' is incremental but names no chain`);
  if (item.type !== "incr" && chain.length > 0)
    throw new RetentionPolicyError(
      `item '${item.id}' names a chain but is not incremental (type "incr")`,
    );
  if (chain.includes(item.id))
    throw new RetentionPolicyError(`item '${item.id}' names itself in its chain`);
  if (new Set(chain).size !== chain.length)
    throw new RetentionPolicyError(`item '${item.id}' names a backup twice in its chain`);
}

export function planRetention(
  items: readonly RetentionItem[],
  policy: RetentionPolicy,
  now: string,
  window?: PitrWindow,
): RetentionPlan {
  checkPolicy(policy);
  const zone = policy.zone;
  const nowTime = toTime(now, zone);
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw new RetentionPolicyError(`item id '${item.id}' appears twice`);
    seen.add(item.id);
  }
  const sorted = items
    .map((item) => ({ item, time: toTime(item.time, zone) }))
    .sort(
      (a, b) =>
        b.time.toMillis() - a.time.toMillis() ||
        (a.item.id < b.item.id ? 1 : a.item.id > b.item.id ? -1 : 0),
    );
  const reasons = sorted.map(() => [] as string[]);

  sorted.forEach(({ item }, index) => {
    if (item.pinned) reasons[index]?.push("pinned");
  });
  if (sorted.length > 0) reasons[0]?.push("newest");
  for (let i = 0; i < Math.min(policy.last ?? 0, sorted.length); i++)
    reasons[i]?.push(`last ${i + 1}/${policy.last}`);

  for (const rule of PERIOD_RULES) {
    const count = policy[rule] ?? 0;
    let kept = 0;
    let previous: string | undefined;
    for (const [index, { time }] of sorted.entries()) {
      if (kept >= count) break;
      const period = time.toFormat(PERIOD_FORMAT[rule]);
      if (period !== previous) {
        reasons[index]?.push(`${rule} ${period}`);
        kept++;
        previous = period;
      }
    }
  }

  if (policy.within !== undefined) {
    const duration: Duration = parseRetentionDuration(policy.within);
    const since = nowTime.minus(duration);
    for (const [index, { time }] of sorted.entries()) {
      if (time >= since) reasons[index]?.push(`within ${policy.within}`);
    }
  }

  let base: RetentionItem | undefined;
  let start: DateTime | undefined;
  if (window !== undefined) {
    start = windowStart(window.duration, now, zone);
    // Only an item whose whole chain is there restores: an incremental whose full is gone
    // is no base (restore reports its broken chain), and keeping it keeps nothing usable.
    const restorable = withWholeChains(items);
    base = findWindowBase(restorable, endOf, start);
    // Younger than the window: no backup reaches its oldest second, so the one that ended
    // first is the oldest restorable point and deleting it would shorten the window further.
    const anchor = base ?? firstEnded(restorable, endOf);
    const at = sorted.findIndex(({ item }) => item === anchor);
    if (at !== -1 && window.allowShorter !== true) {
      reasons[at]?.push(
        base ? WINDOW_BASE_REASON : `${WINDOW_BASE_REASON} (the repository is younger than it)`,
      );
    }
  }

  closeChains(
    sorted.map(({ item }) => item),
    reasons,
  );

  const planned: PlannedItem[] = sorted.map(({ item }, index) => ({
    id: item.id,
    time: item.time,
    pinned: item.pinned === true,
    keep: (reasons[index]?.length ?? 0) > 0,
    reasons: reasons[index] ?? [],
  }));
  const plan: RetentionPlan = {
    items: planned,
    keep: planned.filter((p) => p.keep).map((p) => p.id),
    delete: planned.filter((p) => !p.keep).map((p) => p.id),
  };
  if (window !== undefined && start !== undefined) {
    const keep = new Set(plan.keep);
    const from = restorableFrom(withWholeChains(items.filter((i) => keep.has(i.id))), endOf, start);
    plan.window = {
      duration: window.duration,
      start: start.toUTC().toISO() ?? "",
      base: base?.id ?? null,
      baseKept: base !== undefined && keep.has(base.id),
      restorableFrom: from ?? null,
      shortened: isShortened(from, start),
    };
  }
  return plan;
}

const endOf = (item: RetentionItem): string => item.end ?? item.time;

/**
 * Keeps every item a kept item needs (its chain, and theirs), with the reason
 * `needed by <id> (incr)`: `sorted` is newest first, so the first dependent seen is the
 * newest one. Items kept by a rule already get the reason too: it tells why deleting them
 * by hand is refused.
 */
function closeChains(sorted: readonly RetentionItem[], reasons: string[][]): void {
  const index = new Map(sorted.map((item, at) => [item.id, at]));
  const neededBy = sorted.map(() => new Set<number>());
  const kept = new Set<number>();
  const queue: number[] = [];
  reasons.forEach((r, at) => {
    if (r.length > 0) {
      kept.add(at);
      queue.push(at);
    }
  });
  while (queue.length > 0) {
    const at = queue.shift() as number;
    const item = sorted[at];
    for (const id of item?.chain ?? []) {
      const needed = index.get(id);
      if (needed === undefined || needed === at || item === undefined) continue;
      neededBy[needed]?.add(at);
      if (!kept.has(needed)) {
        kept.add(needed);
        queue.push(needed);
      }
    }
  }
  neededBy.forEach((by, at) => {
    if (by.size === 0) return;
    const newest = sorted[Math.min(...by)]?.id;
    const more = by.size > 1 ? ` and ${by.size - 1} more` : "";
    reasons[at]?.push(`needed by ${newest} (incr)${more}`);
  });
}

/** The item that ended first (ISO times in one zone compare as instants once parsed). */
function firstEnded(
  items: readonly RetentionItem[],
  end: (item: RetentionItem) => string,
): RetentionItem | undefined {
  let first: { item: RetentionItem; at: number } | undefined;
  for (const item of items) {
    const at = DateTime.fromISO(end(item)).toMillis();
    if (!first || at < first.at) first = { item, at };
  }
  return first?.item;
}
