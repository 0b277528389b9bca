/** drill --target-time: absolute, or relative to now. */
import { describe, expect, it } from "vitest";
import { drillTarget } from "../../../src/cli/commands/drill.js";
import { requestFrom } from "../../../src/cli/commands/restore.js";
import { flagsOf } from "../../../src/config/flags.js";

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

describe("drill and restore take the same targets", () => {
  it("drill accepts every target kind restore does", () => {
    const now = new Date("2026-11-21T12:00:00Z");
    expect(drillTarget({ targetLsn: "0/16b3748" }, now)).toEqual({ kind: "lsn", lsn: "0/16B3748" });
    expect(drillTarget({ targetXid: "1234" }, now)).toEqual({ kind: "xid", xid: "1234" });
    expect(drillTarget({ targetName: "before" }, now)).toEqual({ kind: "name", name: "before" });
    expect(drillTarget({ immediate: true }, now)).toEqual({ kind: "immediate" });
    for (const key of ["targetLsn", "targetXid", "targetName", "immediate", "latest"] as const)
      expect(flagsOf("drill run")).toContain(key);
  });

  it("restore and restore plan take times relative to now, as drill does", () => {
    const before = Date.now();
    const request = requestFrom({ targetTime: "-1h" });
    expect(request.target.kind).toBe("time");
    if (request.target.kind !== "time") return;
    expect(request.target.at).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(request.target.at).toBeLessThanOrEqual(Date.now() - 3_600_000);
  });
});
