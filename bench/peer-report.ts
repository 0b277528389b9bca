/** Interleaved rounds, statistics and targets for the peer benchmark. */
import { fixed, median, percentile, renderTable } from "./common.js";

export const MiB = 1024 * 1024;

/** Median of unsorted values (NaN when there are none). */
export function medianOf(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  return median([...values].sort((a, b) => a - b));
}

export function p90Of(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  return percentile(
    [...values].sort((a, b) => a - b),
    90,
  );
}

export function meanOf(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** Rounds what goes into the JSON report. */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Rounds a sample (ms) for the JSON report. */
export function tenths(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The list rotated by `by` places: each round starts with another variant. */
function rotate<T>(list: T[], by: number): T[] {
  if (list.length === 0) return list;
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * `rounds` rounds of `once` over every item, each round starting with the next item (so
 * that a noisy machine slows all alike); each item's results in round order, the items in
 * the order given.
 */
export async function interleaveRounds<T, R>(
  items: T[],
  rounds: number,
  once: (item: T, round: number) => Promise<R>,
): Promise<Map<T, R[]>> {
  const results = new Map<T, R[]>();
  for (let round = 0; round < rounds; round++) {
    for (const item of rotate(items, round)) {
      const result = await once(item, round);
      results.set(item, [...(results.get(item) ?? []), result]);
    }
  }
  return results;
}

export interface Target {
  /** What is compared, e.g. "async archive throughput, loopback". */
  name: string;
  /** The pgha variant measured (or why none). */
  variant: string;
  /** Measured value (a ratio, MB, count) or null when not measured. */
  value: number | null;
  /** How it must compare with `limit`. */
  op: ">=" | "<=" | "<";
  limit: number;
  unit: "x" | "MB" | "segments" | "";
  pass: boolean | null;
  note?: string;
}

export function target(t: Omit<Target, "pass">): Target {
  const { value, op, limit } = t;
  const pass =
    value === null || !Number.isFinite(value)
      ? null
      : op === ">="
        ? value >= limit
        : op === "<="
          ? value <= limit
          : value < limit;
  return { ...t, pass };
}

export function renderTargets(targets: Target[]): string {
  const unit = (u: Target["unit"]) => (u === "x" || u === "" ? u : ` ${u}`);
  const rows = targets.map((t) => [
    t.pass === null ? "n/a" : t.pass ? "PASS" : "FAIL",
    t.name,
    t.variant,
    t.value === null ? "-" : `${fixed(t.value, t.unit === "x" ? 2 : 0)}${unit(t.unit)}`,
    `${t.op} ${t.limit}${unit(t.unit)}`,
    t.note ?? "",
  ]);
  return renderTable(
    ["", "target", "pgha variant", "measured", "goal", "note"],
    rows,
    [0, 1, 2, 5],
  );
}
