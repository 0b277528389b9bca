/** The point-in-time window line of `retention simulate` and `prune` tells the truth. */
import { describe, expect, it } from "vitest";
import { planRetention, type RetentionItem } from "../../retention/index.js";
import { describeWindow } from "../../src/cli/commands/retention.js";

const now = "2026-11-21T12:00:00Z";
const at = (id: string, time: string, extra: Partial<RetentionItem> = {}): RetentionItem => ({
  id,
  time,
  ...extra,
});

describe("describeWindow", () => {
  it("does not name a deleted base as the window's base when an older kept backup holds the window", () => {
    // full f, pinned incr i1, incr i2 (the window's base), then a newer full g.
    const items = [
      at("f", "2026-11-18T00:00:00Z", { type: "full" }),
      at("i1", "2026-11-18T06:00:00Z", { type: "incr", chain: ["f"], pinned: true }),
      at("i2", "2026-11-19T00:00:00Z", { type: "incr", chain: ["f", "i1"] }),
      at("g", "2026-11-21T00:00:00Z", { type: "full" }),
    ];
    const plan = planRetention(items, { last: 1 }, now, { duration: "2d", allowShorter: true });
    expect(plan.delete).toEqual(["i2"]);
    expect(plan.window).toMatchObject({ base: "i2", baseKept: false, shortened: false });
    const line = describeWindow(plan.window as NonNullable<typeof plan.window>, now);
    expect(line).not.toContain("its base: i2");
    expect(line).toContain("its base, i2, is deleted");
    expect(line).toContain("every second since 2026-11-19T12:00:00.000Z stays restorable");
  });
});
