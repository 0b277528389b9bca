/**
 * The scheduler daemon: each job runs as a child `pgha <run> <args>` at its cron times.
 * - A job never overlaps itself: a run that comes due while the last one still runs is
 *   skipped (and logged).
 * - A run missed while the daemon was down (the last run recorded in the repository is
 *   older than the latest scheduled time) runs once at start, unless catchUp is false.
 * - Every run logs its start, end, duration and exit code; a failed run is logged as an
 *   error with the job's last error line, and runs the notification command (the job's
 *   onFailure, else --on-failure) when there is one. The notification's own failure is
 *   logged; it never stops the scheduler, and the job's next runs do not wait for it.
 * - stop() (SIGTERM) schedules nothing more, lets running jobs finish within the grace
 *   period, then sends them SIGTERM, and SIGKILL 10 seconds later.
 */
import type { Logger } from "../log.js";
import { type JobSpec, nextRuns, previousRun } from "./jobs.js";
import { exitCodeOfOutcome, type JobOutcome, notificationEnv } from "./notify.js";

export interface RunningJob {
  /** lastError: the last error line the job wrote to stderr (notify.ts errorMessageOf). */
  done: Promise<{ code: number | null; signal: string | null; lastError?: string | undefined }>;
  kill(signal: NodeJS.Signals): void;
}

/** How a notification command ended: an exit code, a signal, or why it could not start. */
export type NotifyResult = { code: number | null; signal: string | null } | { error: string };

export interface SchedulerDeps {
  start(job: JobSpec): RunningJob;
  /** The last recorded run of a job, and recording one. */
  lastRun(job: JobSpec): Promise<Date | undefined>;
  recordRun(job: JobSpec, at: Date): Promise<void>;
  now: () => Date;
  log: Logger;
  graceMs: number;
  /** --on-failure: for jobs without their own onFailure. */
  onFailure?: string | undefined;
  /** Runs a notification command (/bin/sh -c) with these variables added to the environment. */
  notify?(command: string, env: Record<string, string>): Promise<NotifyResult>;
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
      .then(async ({ code, signal, lastError }) => {
        const durationMs = this.deps.now().getTime() - started.getTime();
        const seconds = (durationMs / 1000).toFixed(1);
        const exit = exitCodeOfOutcome({ code, signal });
        if (code === 0) {
          this.deps.log.info(`job ${job.name}: finished: ok in ${seconds}s (exit code 0)`);
        } else {
          const outcome = signal ? `killed by ${signal}` : "failed";
          this.deps.log.error(
            `job ${job.name}: finished: ${outcome} in ${seconds}s (exit code ${exit})${lastError ? `: ${lastError}` : ""}`,
          );
          this.notify(job, { job: job.name, code, signal, durationMs, lastError });
        }
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

  /** Runs the failure notification in the background; logs how it went, never throws. */
  private notify(job: JobSpec, outcome: JobOutcome): void {
    const command = job.onFailure ?? this.deps.onFailure;
    if (!command || !this.deps.notify) return;
    const failed = (why: string) =>
      this.deps.log.error(`job ${job.name}: the on-failure command failed: ${why}`);
    void Promise.resolve()
      .then(() => this.deps.notify?.(command, notificationEnv(outcome)))
      .then(
        (result) => {
          if (!result) return;
          if ("error" in result) failed(result.error);
          else if (result.code !== 0)
            failed(result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`);
          else this.deps.log.info(`job ${job.name}: ran the on-failure command`);
        },
        (error: unknown) => failed(error instanceof Error ? error.message : String(error)),
      );
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
