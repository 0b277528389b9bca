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
    // A fake clock: every second's tick without waiting for it.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      await scheduler.start();
      // Every second: the first run starts within 1 s, the next tick is skipped.
      await vi.advanceTimersByTimeAsync(2600);
      expect(log.lines.some((l) => /skipped: the previous run is still going/.test(l))).toBe(true);
      expect(children).toHaveLength(1);
      children[0]?.finish(0);
      await vi.advanceTimersByTimeAsync(1200);
      expect(children.length).toBeGreaterThanOrEqual(2);
    } finally {
      vi.useRealTimers();
    }
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

describe("a failed job", () => {
  const daily: JobSpec = {
    name: "nightly",
    cron: "0 2 * * *",
    zone: "UTC",
    run: "backup",
    args: [],
    catchUp: true,
  };
  // A missed run starts at once: one run that ends with `result`.
  const runOnce = async (
    result: { code: number | null; signal: string | null; lastError?: string },
    deps: Partial<ConstructorParameters<typeof Scheduler>[1]>,
    job: JobSpec = daily,
  ) => {
    const log = memoryLogger();
    let clock = Date.parse("2026-12-01T03:00:00Z");
    const scheduler = new Scheduler([job], {
      start: () => {
        clock += 2500; // the run takes 2.5 s
        return { done: Promise.resolve(result), kill: () => undefined };
      },
      lastRun: async () => new Date("2020-01-01T00:00:00Z"),
      recordRun: async () => undefined,
      now: () => new Date(clock),
      log,
      graceMs: 50,
      ...deps,
    });
    await scheduler.start();
    await scheduler.stop();
    return log;
  };

  it("is logged as an error with its duration, exit code and last error line", async () => {
    const log = await runOnce({ code: 6, signal: null, lastError: "pgha: error: boom" }, {});
    expect(log.lines).toContain(
      "error: job nightly: finished: failed in 2.5s (exit code 6): pgha: error: boom",
    );
    const ok = await runOnce({ code: 0, signal: null }, {});
    expect(ok.lines).toContain("info: job nightly: finished: ok in 2.5s (exit code 0)");
  });

  it("runs the on-failure command with the job, exit code, message and duration", async () => {
    const calls: [string, Record<string, string>][] = [];
    const notify = async (command: string, env: Record<string, string>) => {
      calls.push([command, env]);
      return { code: 0, signal: null };
    };
    await runOnce({ code: 0, signal: null }, { onFailure: "notify-me", notify });
    expect(calls, "a job that succeeded notifies nobody").toEqual([]);
    const log = await runOnce(
      { code: 9, signal: null, lastError: "pgha: error: locked by backup" },
      { onFailure: "notify-me", notify },
    );
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]).toEqual([
      "notify-me",
      {
        PGHA_JOB: "nightly",
        PGHA_EXIT_CODE: "9",
        PGHA_MESSAGE: "pgha: error: locked by backup",
        PGHA_JOB_DURATION: "2.5",
      },
    ]);
    await vi.waitFor(() =>
      expect(log.lines).toContain("info: job nightly: ran the on-failure command"),
    );
    // The job's own onFailure replaces --on-failure.
    await runOnce(
      { code: null, signal: "SIGKILL" },
      { onFailure: "notify-me", notify },
      {
        ...daily,
        onFailure: "page-oncall",
      },
    );
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]?.[0]).toBe("page-oncall");
    expect(calls[1]?.[1]).toMatchObject({
      PGHA_EXIT_CODE: "137",
      PGHA_MESSAGE: "killed by SIGKILL",
    });
  });

  it("logs a notification that fails or throws, and the scheduler goes on", async () => {
    for (const notify of [
      async () => ({ code: 3, signal: null }),
      async () => ({ error: "cannot run /bin/sh: no such file or directory (ENOENT)" }),
      async () => {
        throw new Error("spawn exploded");
      },
    ]) {
      const log = await runOnce({ code: 1, signal: null }, { onFailure: "x", notify });
      await vi.waitFor(() =>
        expect(log.lines.filter((l) => /the on-failure command failed: /.test(l))).toHaveLength(1),
      );
      expect(log.lines.find((l) => /on-failure command failed/.test(l))).toMatch(
        /^error: job nightly: the on-failure command failed: (exit code 3|cannot run|spawn exploded)/,
      );
    }
  });
});
