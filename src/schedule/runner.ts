/**
 * The scheduler daemon: each job runs as a child `pgha <run> <args>` at its cron times.
 * - A job never overlaps itself: a run that comes due while the last one still runs is
 *   skipped (and logged).
 * - A run missed while the daemon was down (the last run recorded in the repository is
 *   older than the latest scheduled time) runs once at start, unless catchUp is false.
 * - Every run logs its start, end, duration and outcome.
 * - stop() (SIGTERM) schedules nothing more, lets running jobs finish within the grace
 *   period, then sends them SIGTERM, and SIGKILL 10 seconds later.
 */
import type { Logger } from "../log.js";
import { type JobSpec, nextRuns, previousRun } from "./jobs.js";

export interface RunningJob {
  done: Promise<{ code: number | null; signal: string | null }>;
  kill(signal: NodeJS.Signals): void;
}

export interface SchedulerDeps {
  start(job: JobSpec): RunningJob;
  /** The last recorded run of a job, and recording one. */
  lastRun(job: JobSpec): Promise<Date | undefined>;
  recordRun(job: JobSpec, at: Date): Promise<void>;
  now: () => Date;
  log: Logger;
  graceMs: number;
}

/** setTimeout caps at about 24.8 days: longer waits are taken in steps. */
const MAX_TIMER = 2 ** 31 - 1;

export class Scheduler {
  private readonly running = new Map<string, Promise<void>>();
  private readonly children = new Map<string, RunningJob>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;
  private finished: () => void = () => undefined;
  readonly done = new Promise<void>((resolve) => {
    this.finished = resolve;
  });

  constructor(
    private readonly jobs: JobSpec[],
    private readonly deps: SchedulerDeps,
  ) {}

  async start(): Promise<void> {
    const now = this.deps.now();
    for (const job of this.jobs) {
      const due = previousRun(job, now);
      const last = await this.deps.lastRun(job).catch(() => undefined);
      if (job.catchUp && due && last !== undefined && last < due) {
        this.deps.log.info(
          `job ${job.name}: the run due ${due.toISOString()} was missed; running it now`,
        );
        this.fire(job, due);
      }
      this.schedule(job);
    }
  }

  private schedule(job: JobSpec): void {
    if (this.stopping) return;
    const [next] = nextRuns(job, this.deps.now(), 1);
    if (!next) return;
    const wait = () => {
      const left = next.getTime() - this.deps.now().getTime();
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          if (this.stopping) return;
          if (left > MAX_TIMER) return wait();
          this.fire(job, next);
          this.schedule(job);
        },
        Math.max(0, Math.min(left, MAX_TIMER)),
      );
      this.timers.add(timer);
    };
    wait();
  }

  private fire(job: JobSpec, due: Date): void {
    if (this.running.has(job.name)) {
      this.deps.log.warn(
        `job ${job.name}: the run due ${due.toISOString()} is skipped: the previous run is still going`,
      );
      return;
    }
    const started = this.deps.now();
    this.deps.log.info(`job ${job.name}: started (${job.run} ${job.args.join(" ")})`.trimEnd());
    const child = this.deps.start(job);
    this.children.set(job.name, child);
    const run = child.done
      .then(async ({ code, signal }) => {
        const seconds = ((this.deps.now().getTime() - started.getTime()) / 1000).toFixed(1);
        const outcome =
          code === 0 ? "ok" : signal ? `killed by ${signal}` : `failed (exit ${code})`;
        this.deps.log.info(`job ${job.name}: finished: ${outcome} in ${seconds}s`);
        await this.deps.recordRun(job, due).catch((error: Error) => {
          this.deps.log.warn(`job ${job.name}: could not record the run: ${error.message}`);
        });
      })
      .finally(() => {
        this.running.delete(job.name);
        this.children.delete(job.name);
        if (this.stopping && this.running.size === 0) this.finished();
      });
    this.running.set(job.name, run);
  }

  /** Stops scheduling; running jobs get the grace period, then SIGTERM, then SIGKILL. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done;
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.running.size === 0) {
      this.finished();
      return this.done;
    }
    this.deps.log.info(
      `stopping: waiting up to ${Math.round(this.deps.graceMs / 1000)}s for ${[...this.running.keys()].join(", ")}`,
    );
    const graceful = await Promise.race([
      this.done.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), this.deps.graceMs).unref()),
    ]);
    if (!graceful) {
      for (const [name, child] of this.children) {
        this.deps.log.warn(`job ${name}: still running after the grace period; stopping it`);
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }
      await this.done;
    }
  }
}
