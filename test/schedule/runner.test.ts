/** The scheduler's runner: no overlap, logged outcomes, recorded runs, catch-up, grace on stop. */
import { describe, expect, it, vi } from "vitest";
import { memoryLogger } from "../../src/log.js";
import type { JobSpec } from "../../src/schedule/jobs.js";
import { type RunningJob, Scheduler } from "../../src/schedule/runner.js";

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
    // Every second: the first run starts within 1 s, the next tick within 2 s is skipped.
    const poll = { timeout: 3000, interval: 20 };
    await vi.waitFor(() => {
      expect(log.lines.some((l) => /skipped: the previous run is still going/.test(l))).toBe(true);
    }, poll);
    expect(children).toHaveLength(1);
    children[0]?.finish(0);
    await vi.waitFor(() => expect(children.length).toBeGreaterThanOrEqual(2), poll);
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
