/** Chains of incremental backups in the GFS engine (retention/plan.ts, closeChains). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkItemChains, planRetention, type RetentionItem } from "../../retention/index.js";

/** A weekly full and a daily incremental at 01:00 UTC from `firstDay` (2026-11-dd). */
function weeklyChains(firstDay: number, days: number): RetentionItem[] {
  const out: RetentionItem[] = [];
  let chain: string[] = [];
  for (let d = 0; d < days; d++) {
    const day = String(firstDay + d).padStart(2, "0");
    const id = `b${day}`;
    const time = `2026-11-${day}T01:00:00Z`;
    if (d % 7 === 0) {
      out.push({ id, time, type: "full" });
      chain = [id];
    } else {
      out.push({ id, time, type: "incr", chain: [...chain] });
      chain.push(id);
    }
  }
  return out;
}

const reasonsOf = (plan: ReturnType<typeof planRetention>) =>
  Object.fromEntries(plan.items.filter((i) => i.keep).map((i) => [i.id, i.reasons]));

describe("retention with chains of incremental backups", () => {
  it("keeps the full and the incrementals a kept incremental needs, each with the newest that needs it", () => {
    // Fulls on the 2nd and 9th; daily 3 keeps the 12th, 11th, 10th: all need 9th.
    const plan = planRetention(
      weeklyChains(2, 11),
      { daily: 3, zone: "UTC" },
      "2026-11-12T12:00:00Z",
    );
    expect(reasonsOf(plan)).toEqual({
      b12: ["newest", "daily 2026-11-12"],
      b11: ["daily 2026-11-11", "needed by b12 (incr)"],
      b10: ["daily 2026-11-10", "needed by b12 (incr) and 1 more"],
      b09: ["needed by b12 (incr) and 2 more"],
    });
    expect(plan.delete).toEqual(["b08", "b07", "b06", "b05", "b04", "b03", "b02"]);
  });

  it("a backup kept only for a chain uses up no rule's slot: daily 2 still keeps two days of restore points", () => {
    // Full b02, incr b03, b04: daily 2 keeps b04 and b03; b02 is kept for them, and
    // the second daily slot is not spent on it.
    const plan = planRetention(
      weeklyChains(2, 3),
      { daily: 2, zone: "UTC" },
      "2026-11-04T12:00:00Z",
    );
    expect(reasonsOf(plan)).toEqual({
      b04: ["newest", "daily 2026-11-04"],
      b03: ["daily 2026-11-03", "needed by b04 (incr)"],
      b02: ["needed by b04 (incr) and 1 more"],
    });
  });

  it("weekly and monthly slots pick among all backups, incrementals too, and keep their chains", () => {
    const items = weeklyChains(2, 21); // fulls on the 2nd, 9th, 16th; newest the 22nd
    const plan = planRetention(items, { weekly: 3, zone: "UTC" }, "2026-11-22T12:00:00Z");
    // ISO weeks: 2026-W45 is Nov 2-8, W46 Nov 9-15, W47 Nov 16-22.
    const kept = reasonsOf(plan);
    expect(kept.b22).toEqual(["newest", "weekly 2026-W47"]);
    expect(kept.b15).toEqual(["weekly 2026-W46"]);
    expect(kept.b08).toEqual(["weekly 2026-W45"]);
    // b15 (an incr) keeps b09..b14; b08 keeps b02..b07; b22 keeps b16..b21: everything.
    expect(plan.delete).toEqual([]);
    expect(kept.b09).toEqual(["needed by b15 (incr) and 5 more"]);
  });

  it("a pinned incremental keeps its chain", () => {
    const items = weeklyChains(2, 9).map((i) => (i.id === "b04" ? { ...i, pinned: true } : i));
    const plan = planRetention(items, { last: 1 }, "2026-11-10T12:00:00Z");
    expect(reasonsOf(plan)).toEqual({
      b10: ["newest", "last 1/1"],
      b09: ["needed by b10 (incr)"],
      b04: ["pinned"],
      b03: ["needed by b04 (incr)"],
      b02: ["needed by b04 (incr) and 1 more"],
    });
  });

  it("the point-in-time window's base may be an incremental: its chain is kept and the window is not shortened", () => {
    const items = weeklyChains(2, 9).map((i) => ({ ...i, end: i.time.replace("01:00", "01:30") }));
    // Window 2 days from the 10th 12:00: starts the 8th 12:00; base = b08 (incr of b02).
    const plan = planRetention(items, { last: 1, zone: "UTC" }, "2026-11-10T12:00:00Z", {
      duration: "2d",
    });
    expect(plan.window).toMatchObject({ base: "b08", baseKept: true, shortened: false });
    expect(plan.keep).toEqual(
      expect.arrayContaining(["b10", "b09", "b08", "b07", "b06", "b05", "b04", "b03", "b02"]),
    );
    expect(reasonsOf(plan).b02).toEqual(["needed by b08 (incr) and 5 more"]);
  });

  it("an incremental whose chain is broken is never the window's base: the newest whole one before it is", () => {
    const items = weeklyChains(2, 9)
      .map((i) => ({ ...i, end: i.time.replace("01:00", "01:30") }))
      .filter((i) => i.id !== "b04"); // b05..b08 need b04, which is gone
    const plan = planRetention(items, { last: 1, zone: "UTC" }, "2026-11-10T12:00:00Z", {
      duration: "2d",
    });
    // b08 ended before the window's start but cannot restore; b03 (full b02 + b03) can.
    expect(plan.window).toMatchObject({ base: "b03", baseKept: true, shortened: false });
    expect(reasonsOf(plan).b03).toEqual(["base of the point-in-time window"]);
    expect(plan.window?.restorableFrom).toBe("2026-11-03T01:30:00Z");
  });

  it("a chain id that is not among the items is ignored (that backup is gone already)", () => {
    const items: RetentionItem[] = [
      { id: "i2", time: "2026-11-03T00:00:00Z", type: "incr", chain: ["gone", "i1"] },
      { id: "i1", time: "2026-11-02T00:00:00Z", type: "incr", chain: ["gone"] },
    ];
    const plan = planRetention(items, { last: 1 }, "2026-11-04T00:00:00Z");
    expect(plan.keep).toEqual(["i2", "i1"]);
  });

  const chainsArb = fc
    .array(
      fc.record({
        hours: fc.integer({ min: 1, max: 24 * 40 }),
        full: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        pinned: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      }),
      { minLength: 1, maxLength: 40 },
    )
    .map((steps) => {
      let at = Date.parse("2026-01-01T00:00:00Z");
      let chain: string[] = [];
      return steps.map((step, n): RetentionItem => {
        at += step.hours * 3_600_000;
        const id = `x${String(n).padStart(2, "0")}`;
        const time = new Date(at).toISOString();
        const full = n === 0 || step.full;
        const item: RetentionItem = full
          ? { id, time, type: "full", pinned: step.pinned }
          : { id, time, type: "incr", chain: [...chain], pinned: step.pinned };
        chain = full ? [id] : [...chain, id];
        return item;
      });
    });
  const policyArb = fc.record({
    last: fc.integer({ min: 0, max: 3 }),
    daily: fc.integer({ min: 0, max: 5 }),
    weekly: fc.integer({ min: 0, max: 3 }),
    monthly: fc.integer({ min: 1, max: 3 }),
    zone: fc.constant("UTC"),
  });

  it.each([
    [
      { id: "i", time: "2026-11-02T01:00:00Z", type: "incr" },
      /'i' is incremental but names no chain/,
    ],
    [
      { id: "f", time: "2026-11-02T01:00:00Z", chain: ["b01"] },
      /'f' names a chain but is not incremental/,
    ],
    [
      { id: "i", time: "2026-11-02T01:00:00Z", type: "incr", chain: ["b01", "i"] },
      /'i' names itself in its chain/,
    ],
    [
      { id: "i", time: "2026-11-02T01:00:00Z", type: "incr", chain: ["b01", "b01"] },
      /'i' names a backup twice in its chain/,
    ],
    [
      { id: "i", time: "2026-10-31T01:00:00Z", type: "incr", chain: ["b01"] },
      /'i' names 'b01' in its chain, which is newer than it/,
    ],
  ] as [RetentionItem, RegExp][])(
    "checkItemChains (retention simulate's input) refuses a chain no backup can have: %j",
    (item, message) => {
      const items: RetentionItem[] = [
        { id: "b01", time: "2026-11-01T01:00:00Z", type: "full" },
        item,
      ];
      expect(() => checkItemChains(items)).toThrow(message);
      // The engine itself (prune's items: manifests from hosts whose clocks may step back)
      // plans them as they are.
      expect(() => planRetention(items, { daily: 7 }, "2026-11-03T00:00:00Z")).not.toThrow();
    },
  );

  it("property: every kept item's chain is kept, and the rules' slots are those of the same items without chains", () => {
    fc.assert(
      fc.property(chainsArb, policyArb, (items, policy) => {
        const now = "2027-06-01T00:00:00Z";
        const window = { duration: "7d" };
        const plan = planRetention(items, policy, now, window);
        const keep = new Set(plan.keep);
        for (const item of items) {
          if (!keep.has(item.id)) continue;
          for (const id of item.chain ?? []) expect(keep.has(id)).toBe(true);
        }
        const flat = planRetention(
          items.map(({ chain: _c, type: _t, ...rest }) => rest),
          policy,
          now,
          window,
        );
        const byId = new Map(plan.items.map((i) => [i.id, i]));
        for (const f of flat.items) {
          const reasons = byId.get(f.id)?.reasons ?? [];
          expect(reasons.filter((r) => !r.startsWith("needed by "))).toEqual(f.reasons);
        }
        // Nothing is kept that neither a rule nor a kept item's chain explains.
        for (const i of plan.items) expect(i.keep).toBe(i.reasons.length > 0);
      }),
      { numRuns: 300 },
    );
  });
});
