/** Restore targets: parsed once, time kept as an instant plus the text PostgreSQL reads. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { describeTarget, parseRestoreRequest, parseTargetTime } from "../../src/restore/target.js";

const now = new Date("2026-11-21T12:00:00Z");
const absolute = { now, relativeTimes: false };
const relative = { now, relativeTimes: true };

describe("parseTargetTime", () => {
  it.each([
    ["2026-11-21T13:03:27Z", "2026-11-21 13:03:27+00:00", "2026-11-21T13:03:27Z"],
    ["2026-11-21T14:03:27+01:00", "2026-11-21 14:03:27+01:00", "2026-11-21T13:03:27Z"],
    ["2026-11-21T13:03:27.123456z", "2026-11-21 13:03:27.123456+00:00", "2026-11-21T13:03:27.123Z"],
    [" 2026-11-21 08:03:27-0500 ", "2026-11-21 08:03:27-0500", "2026-11-21T13:03:27Z"],
  ])("%s is the instant %s as PostgreSQL reads it", (raw, text, instant) => {
    expect(parseTargetTime(raw, absolute)).toEqual({ kind: "time", at: Date.parse(instant), text });
  });

  it.each([["2026-11-21T13:03:27"], ["yesterday"], ["2026-13-40T00:00:00Z"], ["-1h"]])(
    "refuses %s without relative times",
    (raw) => {
      expect(() => parseTargetTime(raw, absolute)).toThrow(UsageError);
      expect(() => parseTargetTime(raw, absolute)).toThrow(/is not an ISO 8601 time with a zone/);
    },
  );

  it("takes -90s, -30m, -1h and -2d relative to now when allowed", () => {
    const at = (raw: string) => {
      const target = parseTargetTime(raw, relative);
      return target.kind === "time" ? new Date(target.at).toISOString() : target.kind;
    };
    expect(at("-90s")).toBe("2026-11-21T11:58:30.000Z");
    expect(at("-30m")).toBe("2026-11-21T11:30:00.000Z");
    expect(at("-1h")).toBe("2026-11-21T11:00:00.000Z");
    expect(at("-2d")).toBe("2026-11-19T12:00:00.000Z");
    expect(() => parseTargetTime("-1w", relative)).toThrow(/not an ISO 8601 time/);
  });
});

describe("parseRestoreRequest", () => {
  it("defaults to latest on the latest timeline, inclusive, pausing", () => {
    expect(parseRestoreRequest({}, absolute)).toEqual({
      target: { kind: "latest" },
      timeline: "latest",
      exclusive: false,
      action: "pause",
      backupId: undefined,
    });
  });

  it("reads every target kind and the options around it", () => {
    expect(parseRestoreRequest({ targetLsn: "16/b374d848" }, absolute).target).toEqual({
      kind: "lsn",
      lsn: "16/B374D848",
    });
    expect(parseRestoreRequest({ targetXid: "1234" }, absolute).target).toEqual({
      kind: "xid",
      xid: "1234",
    });
    expect(parseRestoreRequest({ targetName: "before-upgrade" }, absolute).target).toEqual({
      kind: "name",
      name: "before-upgrade",
    });
    expect(parseRestoreRequest({ immediate: true }, absolute).target).toEqual({
      kind: "immediate",
    });
    expect(
      parseRestoreRequest(
        {
          latest: true,
          targetTimeline: "3",
          targetExclusive: true,
          targetAction: "promote",
          backup: "20261121T020000Z",
        },
        absolute,
      ),
    ).toEqual({
      target: { kind: "latest" },
      timeline: 3,
      exclusive: true,
      action: "promote",
      backupId: "20261121T020000Z",
    });
    expect(parseRestoreRequest({ targetTimeline: "current" }, absolute).timeline).toBe("current");
  });

  it.each([
    [{ targetTime: "2026-11-21T13:03:27Z", latest: true }, /give one target/],
    [{ targetLsn: "0/1", targetXid: "5" }, /give one target/],
    [{ targetLsn: "16B3748" }, /--target-lsn '16B3748' is not an LSN/],
    [{ targetXid: "12a" }, /--target-xid '12a' is not a transaction id/],
    [{ targetTimeline: "0" }, /--target-timeline '0' is not latest, current or a number/],
    [{ targetTimeline: "newest" }, /is not latest, current or a number/],
    [{ targetAction: "stop" }, /--target-action 'stop' is not promote, pause or shutdown/],
  ])("refuses %j as a usage error", (flags, message) => {
    expect(() => parseRestoreRequest(flags, absolute)).toThrow(UsageError);
    expect(() => parseRestoreRequest(flags, absolute)).toThrow(message);
  });

  it("describes each target for messages", () => {
    const time = parseTargetTime("2026-11-21T13:03:27Z", absolute);
    expect(describeTarget(time)).toBe("time 2026-11-21 13:03:27+00:00");
    expect(describeTarget({ kind: "name", name: "x" })).toBe("restore point 'x'");
    expect(describeTarget({ kind: "latest" })).toBe("the end of the archive");
  });
});

describe("bad targets are usage errors (exit 2), found before the repository is read", () => {
  it.each([
    ["2026-02-30T10:00:00Z", /is not a real time: 2026-02 has no day 30/],
    ["2025-02-29T10:00:00+01:00", /2025-02 has no day 29/],
    ["2026-04-31 10:00:00Z", /2026-04 has no day 31/],
    ["2026-11-21T24:00:00Z", /24:00:00 is not a time of day/],
  ])("refuses the impossible date %s", (raw, message) => {
    expect(() => parseTargetTime(raw, absolute)).toThrow(UsageError);
    expect(() => parseTargetTime(raw, absolute)).toThrow(message);
  });

  it("takes February 29 of a leap year", () => {
    expect(parseTargetTime("2028-02-29T10:00:00Z", absolute)).toMatchObject({
      at: Date.parse("2028-02-29T10:00:00Z"),
    });
  });

  it("refuses an empty --target-name (PostgreSQL would recover to the end)", () => {
    expect(() => parseRestoreRequest({ targetName: "" }, absolute)).toThrow(UsageError);
    expect(() => parseRestoreRequest({ targetName: "" }, absolute)).toThrow(
      /--target-name is empty/,
    );
  });
});
