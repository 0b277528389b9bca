/**
 * One duration grammar (issue 12, point 7): m is minutes wherever it is accepted, months
 * are mo, and a spelling that could mean either is refused with a hint.
 */
import { describe, expect, it } from "vitest";
import { parseRetentionDuration } from "../../retention/duration.js";
import { DurationError, parseDurationMs, parseDurationParts } from "../../src/config/duration.js";
import { resolveConfig } from "../../src/config/load.js";
import { UsageError } from "../../src/errors.js";
import { parseTargetTime } from "../../src/restore/target.js";

const configWith = (env: Record<string, string>) =>
  resolveConfig({ flags: { repo: "/r" }, env, file: undefined });

function usageError(attempt: () => unknown): UsageError {
  try {
    attempt();
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("the duration grammar", () => {
  it.each([
    ["500ms", 500],
    ["90", 90_000],
    ["30s", 30_000],
    ["2m", 120_000],
    ["2min", 120_000],
    ["1.5h", 5_400_000],
    ["2d", 172_800_000],
    ["1w", 604_800_000],
    ["PT30M", 1_800_000],
    ["P1DT2H", 93_600_000],
  ])("reads %s as %d ms", (raw, ms) => {
    expect(parseDurationMs(raw)).toBe(ms);
  });

  it("reads mo and y as calendar months and years, and P1M as a month", () => {
    expect(parseDurationParts("3mo", "calendar")).toMatchObject({ months: 3, minutes: 0 });
    expect(parseDurationParts("1y", "calendar")).toMatchObject({ years: 1 });
    expect(parseDurationParts("P1M", "calendar")).toMatchObject({ months: 1, minutes: 0 });
    expect(parseDurationParts("PT1M", "calendar")).toMatchObject({ months: 0, minutes: 1 });
    expect(parseDurationParts("90min", "calendar")).toMatchObject({ minutes: 90, months: 0 });
  });

  it.each([
    [
      "30M",
      "fixed",
      /ambiguous: M could be minutes or months/,
      "write 30min for minutes or 30mo for months",
    ],
    ["30m", "calendar", /ambiguous here/, "write 30min for minutes or 30mo for months"],
    ["7", "calendar", /has no unit/, "7d"],
    ["1mo", "fixed", /has no fixed length/, "30d"],
    ["1.5mo", "calendar", /whole number of months/, "3mo"],
    ["soon", "fixed", /is not a duration/, "15min"],
    ["P", "calendar", /is not a duration/, "P7D"],
  ] as const)("refuses %s where a %s duration is read, with a hint", (raw, use, message, hint) => {
    expect(() => parseDurationParts(raw, use)).toThrow(DurationError);
    expect(() => parseDurationParts(raw, use)).toThrow(message);
    try {
      parseDurationParts(raw, use);
    } catch (error) {
      expect((error as DurationError).hint).toContain(hint);
    }
  });
});

describe("every duration option reads the one grammar", () => {
  it("reads m as minutes in --archive-timeout, --retry-timeout and --schedule-grace", () => {
    const config = configWith({
      PGHA_ARCHIVE_TIMEOUT: "3m",
      PGHA_RETRY_TIMEOUT: "2m",
      PGHA_SCHEDULE_GRACE: "90min",
    });
    expect(config.archiveTimeoutMs).toBe(180_000);
    expect(config.retryTimeoutMs).toBe(120_000);
    expect(config.scheduleGraceMs).toBe(5_400_000);
  });

  it("refuses m in --pitr-window and --keep-within, where it used to mean months", () => {
    for (const [name, env] of [
      ["--pitr-window", "PGHA_PITR_WINDOW"],
      ["--keep-within", "PGHA_KEEP_WITHIN"],
    ] as const) {
      const error = usageError(() => configWith({ [env]: "30m" }));
      expect(error.message).toMatch(new RegExp(`${name} \\(from ${env}\\): '30m' is ambiguous`));
      expect(error.hint).toBe("write 30min for minutes or 30mo for months");
    }
  });

  it("keeps 3mo as three months and 90min as 90 minutes in the retention engine", () => {
    const config = configWith({ PGHA_PITR_WINDOW: "3mo", PGHA_KEEP_WITHIN: "90min" });
    expect(config.retention.pitrWindow).toBe("3mo");
    expect(parseRetentionDuration(config.retention.pitrWindow).as("days")).toBeGreaterThan(80);
    expect(parseRetentionDuration("90min").as("minutes")).toBe(90);
    expect(parseRetentionDuration("35s").as("seconds")).toBe(35);
    expect(() => parseRetentionDuration("3m")).toThrow(/ambiguous/);
  });

  it("reads relative target times with the same units", () => {
    const now = new Date("2026-11-21T12:00:00Z");
    const at = (raw: string) => {
      const target = parseTargetTime(raw, { now, relativeTimes: true });
      return target.kind === "time" ? new Date(target.at).toISOString() : target.kind;
    };
    expect(at("-90min")).toBe("2026-11-21T10:30:00.000Z");
    expect(at("-30m")).toBe("2026-11-21T11:30:00.000Z");
    expect(at("-1.5h")).toBe("2026-11-21T10:30:00.000Z");
  });
});
