/** Scheduled jobs: next runs (pure, injected clock), validation, and the runner's rules. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { type JobSpec, nextRuns, parseJobs, previousRun } from "../../src/schedule/jobs.js";
import { type RunningJob, Scheduler } from "../../src/schedule/runner.js";

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
  ])("refuses %j, naming the job", (raw, message) => {
    expect(() => parseJobs(raw, "UTC")).toThrow(UsageError);
    expect(() => parseJobs(raw, "UTC")).toThrow(message);
  });
});

function fakeChild(): RunningJob & { finish(code: number): void; kills: string[] } {
  let finish: (v: { code: number | null; signal: string | null }) => void = () => undefined;
  const kills: string[] = [];
  return {
    kills,
    done: new Promise((r) => {
      finish = r;
    }),
    finish: (code) => finish({ code, signal: null }),
    kill(signal) {
      kills.push(signal);
      finish({ code: null, signal });
    },
  };
}

describe("the scheduler", () => {
  const every = (name: string): JobSpec => ({
    name,
    cron: "* * * * * *",
    zone: "UTC",
    run: "backup",
    args: [],
    catchUp: true,
  });

  it("never overlaps a job with itself, logs outcomes and records runs", async () => {
    const log = memoryLogger();
    const children: ReturnType<typeof fakeChild>[] = [];
    const recorded: string[] = [];
    const scheduler = new Scheduler([every("b")], {
      start: () => {
        const c = fakeChild();
        children.push(c);
        return c;
      },
      lastRun: async () => undefined,
      recordRun: async (job) => void recorded.push(job.name),
      now: () => new Date(),
      log,
      graceMs: 50,
    });
    await scheduler.start();
    await new Promise((r) => setTimeout(r, 2600));
    expect(children).toHaveLength(1);
    expect(log.lines.some((l) => /skipped: the previous run is still going/.test(l))).toBe(true);
    children[0]?.finish(0);
    await new Promise((r) => setTimeout(r, 1200));
    expect(children.length).toBeGreaterThanOrEqual(2);
    expect(log.lines.some((l) => /job b: finished: ok in \d+\.\ds/.test(l))).toBe(true);
    expect(recorded).toContain("b");
    await scheduler.stop();
    expect(children.at(-1)?.kills).toEqual(["SIGTERM"]);
  });

  it("runs a missed run once at start", async () => {
    const log = memoryLogger();
    let started = 0;
    const daily: JobSpec = { ...every("d"), cron: "0 2 * * *" };
    const scheduler = new Scheduler([daily, { ...daily, name: "off", catchUp: false }], {
      start: () => {
        started++;
        const c = fakeChild();
        c.finish(0);
        return c;
      },
      lastRun: async () => new Date("2020-01-01T00:00:00Z"),
      recordRun: async () => undefined,
      now: () => new Date(),
      log,
      graceMs: 50,
    });
    await scheduler.start();
    expect(started).toBe(1);
    expect(log.lines.some((l) => /job d: the run due .* was missed; running it now/.test(l))).toBe(
      true,
    );
    await scheduler.stop();
  });
});
