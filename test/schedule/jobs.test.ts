/** Scheduled jobs: next runs (pure, injected clock) and validation. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { nextRuns, parseJobs, previousRun } from "../../src/schedule/jobs.js";

const brussels = { cron: "0 2 * * *", zone: "Europe/Brussels" };
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe("next runs", () => {
  it("follow Europe/Brussels across the March change: 02:00 does not exist, the run is at 03:00 CEST", () => {
    expect(iso(nextRuns(brussels, new Date("2026-03-27T12:00:00Z"), 4))).toEqual([
      "2026-03-28T01:00:00.000Z", // 02:00 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST: the clocks jumped from 02:00 to 03:00
      "2026-03-30T00:00:00.000Z", // 02:00 CEST
      "2026-03-31T00:00:00.000Z",
    ]);
  });

  it("follow Europe/Brussels across the October change: 02:00 happens twice, the job runs once", () => {
    expect(iso(nextRuns(brussels, new Date("2026-10-23T12:00:00Z"), 4))).toEqual([
      "2026-10-24T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T00:00:00.000Z", // the first 02:00 (CEST); not again at 02:00 CET
      "2026-10-26T01:00:00.000Z", // 02:00 CET
      "2026-10-27T01:00:00.000Z",
    ]);
  });

  it("take seconds as a sixth field and know the previous run", () => {
    const job = { cron: "*/15 * * * * *", zone: "UTC" };
    expect(iso(nextRuns(job, new Date("2026-11-21T12:00:07Z"), 2))).toEqual([
      "2026-11-21T12:00:15.000Z",
      "2026-11-21T12:00:30.000Z",
    ]);
    expect(previousRun(brussels, new Date("2026-11-21T12:00:00Z"))?.toISOString()).toBe(
      "2026-11-21T01:00:00.000Z",
    );
  });
});

describe("job validation", () => {
  it.each([
    [
      [{ name: "a", cron: "61 * * * *", run: "backup" }],
      /job 'a': invalid cron expression '61 \* \* \* \*'/,
    ],
    [
      [{ name: "a", cron: "0 2 * * *", zone: "Mars/Base", run: "backup" }],
      /job 'a': 'Mars\/Base' is not a time zone/,
    ],
    [
      [{ name: "a", cron: "0 2 * * *", run: "vacuum" }],
      /job 'a': 'run' must be one of backup, dump, prune, drill/,
    ],
    [
      [
        { name: "a", cron: "0 2 * * *", run: "dump" },
        { name: "a", cron: "0 3 * * *", run: "dump" },
      ],
      /two jobs have this name/,
    ],
    [{ name: "a" }, /must be a list/],
    // cron-parser alone would take these as every minute of 15 February / of 02:xx.
    [
      [{ name: "a", cron: "15 2 *", run: "backup" }],
      /job 'a': invalid cron expression '15 2 \*': it has 3 fields, cron needs 5/,
    ],
    [[{ name: "a", cron: "0 2", run: "backup" }], /it has 2 fields/],
    [[{ name: "a", cron: "0 0 2 * * * *", run: "backup" }], /it has 7 fields/],
    [[{ name: "a", cron: "0 2 * * *", run: "backup", onFailure: 3 }], /'onFailure' must be/],
    [[{ name: "a", cron: "0 2 * * *", run: "backup", onFailure: " " }], /'onFailure' must be/],
  ])("refuses %j, naming the job", (raw, message) => {
    expect(() => parseJobs(raw, "UTC")).toThrow(UsageError);
    expect(() => parseJobs(raw, "UTC")).toThrow(message);
  });
});

describe("a job's onFailure", () => {
  it("is kept as given, and absent when not given", () => {
    const [withIt, without] = parseJobs(
      [
        { name: "a", cron: "0 2 * * *", run: "backup", onFailure: "notify $PGHA_JOB" },
        { name: "b", cron: "0 2 * * *", run: "dump" },
      ],
      "UTC",
    );
    expect(withIt?.onFailure).toBe("notify $PGHA_JOB");
    expect(without).not.toHaveProperty("onFailure");
  });
});
