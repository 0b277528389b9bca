/** The point-in-time window's base (retention/window-base.ts) in the GFS engine's plans. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  planRetention,
  planWalHorizon,
  type RetentionItem,
  WINDOW_BASE_REASON,
} from "../../retention/index.js";

const now = "2026-11-21T12:00:00Z";
/** Backups that start 10 minutes before they end. */
const backup = (end: string): RetentionItem => ({
  id: end,
  time: new Date(Date.parse(end) - 600_000).toISOString(),
  end,
});
const b1 = backup("2026-11-18T00:00:00Z");
const b2 = backup("2026-11-20T00:00:00Z");
const b3 = backup("2026-11-21T00:00:00Z");

describe("the base of the point-in-time window", () => {
  it("is kept whatever the other rules say: last 1 with a 2-day window keeps the backup before it", () => {
    const plan = planRetention([b1, b2, b3], { last: 1 }, now, { duration: "2d" });
    const kept = Object.fromEntries(plan.items.filter((p) => p.keep).map((p) => [p.id, p.reasons]));
    expect(kept).toEqual({
      [b3.id]: ["newest", "last 1/1"],
      [b1.id]: [WINDOW_BASE_REASON],
    });
    expect(plan.delete).toEqual([b2.id]);
    expect(plan.window).toEqual({
      duration: "2d",
      start: "2026-11-19T12:00:00.000Z",
      base: b1.id,
      baseKept: true,
      restorableFrom: b1.end,
      shortened: false,
    });
  });

  it("is the newest backup that ENDED at or before now - window, not the newest that started", () => {
    // Started before the window's start but ended after it: it cannot restore that second.
    const late = { id: "late", time: "2026-11-19T11:00:00Z", end: "2026-11-19T13:00:00Z" };
    const exact = { id: "exact", time: "2026-11-19T11:30:00Z", end: "2026-11-19T12:00:00Z" };
    const plan = planRetention([b1, late, exact, b3], { last: 1 }, now, { duration: "2d" });
    expect(plan.window?.base).toBe("exact");
    expect(plan.keep.sort()).toEqual(["exact", b3.id].sort());
  });

  it("with allowShorter may be deleted, and the plan says what the window becomes", () => {
    const plan = planRetention([b1, b2, b3], { last: 1 }, now, {
      duration: "2d",
      allowShorter: true,
    });
    expect(plan.keep).toEqual([b3.id]);
    expect(plan.window).toMatchObject({
      base: b1.id,
      baseKept: false,
      restorableFrom: b3.end,
      shortened: true,
    });
  });

  it("a shortened window is reported when no backup is old enough yet", () => {
    const plan = planRetention([b2, b3], { last: 5 }, now, { duration: "7d" });
    expect(plan.window).toMatchObject({
      base: null,
      restorableFrom: b2.end,
      shortened: true,
    });
  });

  it("keeps the backup that ended first while the repository is younger than the window", () => {
    // The window's oldest second is out of reach; deleting b2 would move the oldest
    // restorable point from b2's end to b3's.
    const plan = planRetention([b2, b3], { last: 1 }, now, { duration: "7d" });
    expect([...plan.keep].sort()).toEqual([b2.id, b3.id].sort());
    expect(plan.items.find((i) => i.id === b2.id)?.reasons).toEqual([
      `${WINDOW_BASE_REASON} (the repository is younger than it)`,
    ]);
    expect(plan.window).toMatchObject({ base: null, restorableFrom: b2.end, shortened: true });
    const shorter = planRetention([b2, b3], { last: 1 }, now, {
      duration: "7d",
      allowShorter: true,
    });
    expect(shorter.delete).toEqual([b2.id]);
    expect(shorter.window).toMatchObject({ restorableFrom: b3.end });
  });

  it("an older kept backup covers the window when the base goes: not shortened", () => {
    const pinned = { ...b1, id: "pinned", end: "2026-11-01T00:00:00Z", pinned: true };
    const plan = planRetention([pinned, b1, b3], { last: 1 }, now, {
      duration: "2d",
      allowShorter: true,
    });
    expect(plan.delete).toEqual([b1.id]);
    expect(plan.window).toMatchObject({ restorableFrom: pinned.end, shortened: false });
  });

  it("plans without a window are unchanged and carry no window report", () => {
    const plan = planRetention([b1, b2, b3], { last: 1 }, now);
    expect(plan.keep).toEqual([b3.id]);
    expect(plan.window).toBeUndefined();
  });

  it("property: the window's oldest second is always restorable from a kept item, and the WAL horizon anchors there", () => {
    const endArb = fc
      .integer({ min: Date.parse("2026-10-01T00:00:00Z"), max: Date.parse(now) })
      .map((ms) => new Date(ms).toISOString());
    fc.assert(
      fc.property(
        fc.uniqueArray(endArb, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom("1h", "2d", "1w", "P10D"),
        (ends, last, duration) => {
          const items = ends.map((end) => backup(end));
          const plan = planRetention(items, { last }, now, { duration });
          const start = Date.parse(plan.window?.start ?? "");
          const kept = items.filter((i) => plan.keep.includes(i.id));
          const anyOldEnough = items.some((i) => Date.parse(i.end ?? "") <= start);
          expect(kept.some((i) => Date.parse(i.end ?? "") <= start)).toBe(anyOldEnough);
          expect(plan.window?.shortened).toBe(!anyOldEnough);
          // The horizon over the kept backups anchors at the base retention kept.
          const seg = (n: number) => `00000001000000000000${n.toString(16).padStart(4, "0")}`;
          const byEnd = [...kept].sort((a, b) => Date.parse(a.end ?? "") - Date.parse(b.end ?? ""));
          const horizon = planWalHorizon({
            kept: byEnd.map((i, n) => ({
              id: i.id,
              timeline: 1,
              startWal: seg(n + 1),
              stopWal: seg(n + 1),
              stopTime: i.end ?? "",
            })),
            pitrWindow: duration,
            now,
            walSegmentSize: 16 << 20,
            timelines: [1],
          });
          if (anyOldEnough) expect(horizon.anchor).toBe(plan.window?.base);
        },
      ),
    );
  });
});
