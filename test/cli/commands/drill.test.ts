/** drill --target-time: absolute, or relative to now. */
import { describe, expect, it } from "vitest";
import { drillTarget } from "../../../src/cli/commands/drill.js";

describe("drill targets", () => {
  it("take times relative to now", () => {
    const now = new Date("2026-11-21T12:00:00Z");
    expect(drillTarget({ targetTime: "-1h" }, now)).toEqual({
      kind: "time",
      at: Date.parse("2026-11-21T11:00:00Z"),
      text: "2026-11-21 11:00:00.000+00:00",
    });
    expect(drillTarget({ targetTime: "-2d" }, now)).toEqual({
      kind: "time",
      at: Date.parse("2026-11-19T12:00:00Z"),
      text: "2026-11-19 12:00:00.000+00:00",
    });
    expect(drillTarget({}, now)).toEqual({ kind: "latest" });
    expect(() => drillTarget({ targetTime: "yesterday" }, now)).toThrow(/not an ISO 8601 time/);
  });
});
