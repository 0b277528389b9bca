/**
 * Jobs that come due at the same instant and need the same repository lock: the one that
 * starts second exits 9 (locked), every time. The usual case is "full weekly, incremental
 * daily" written as `0 1 * * 0` (backup --type full) and `0 1 * * *` (backup --type incr):
 * on Sundays both fire. Runs at different times that overlap (a full still running when
 * the next job starts) cannot be foreseen here; the lock refuses those at run time.
 * Pure: the runs come from cron-parser, as in jobs.ts.
 */
import { CronExpressionParser } from "cron-parser";
import { type JobKind, type JobSpec, previousRun } from "./jobs.js";

/** The repository locks each kind of job takes (backup and prune: cluster; dump and prune: dump). */
const LOCKS: Record<JobKind, readonly string[]> = {
  backup: ["cluster"],
  prune: ["cluster", "dump"],
  dump: ["dump"],
  drill: [],
};

export interface Clash {
  first: string;
  second: string;
  lock: string;
  /** The first instant both come due. */
  at: Date;
  /** How many times they come due together within the horizon. */
  times: number;
}

/** The value of `--name v` or `--name=v` in a job's args (the config's value otherwise). */
function argValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === `--${name}`) value = args[i + 1];
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
  });
  return value;
}

/** Which repository and cluster a job works on: jobs share the config file and environment. */
const targetOf = (job: JobSpec) =>
  `${argValue(job.args, "repo") ?? ""}\u0000${argValue(job.args, "cluster") ?? ""}`;

const HORIZON_MS = 35 * 86_400_000;
/** Runs looked at per job: a job every minute is looked at for its first day or so. */
const MAX_RUNS = 2000;

/** A job's runs within the horizon; `all` is false when MAX_RUNS cut them short. */
function runsWithin(job: JobSpec, after: Date, until: number): { at: Set<number>; all: boolean } {
  const times = CronExpressionParser.parse(job.cron, { currentDate: after, tz: job.zone });
  const at = new Set<number>();
  while (at.size < MAX_RUNS) {
    if (!times.hasNext()) return { at, all: true };
    const run = times.next().getTime();
    if (run > until) return { at, all: true };
    at.add(run);
  }
  return { at, all: false };
}

/**
 * Clashes among `jobs` in the 35 days after `after`: each pair that shares a target and a
 * lock, checked at every run of either (a job whose runs were cut short is asked about
 * the other's runs through its cron expression, so one that runs every minute still
 * meets a weekly one).
 */
export function findClashes(jobs: readonly JobSpec[], after: Date): Clash[] {
  const until = after.getTime() + HORIZON_MS;
  const runs = jobs.map((job) => runsWithin(job, after, until));
  const due = (i: number, t: number) => {
    const known = runs[i] as { at: Set<number>; all: boolean };
    if (known.at.has(t)) return true;
    return !known.all && previousRun(jobs[i] as JobSpec, new Date(t))?.getTime() === t;
  };
  const clashes: Clash[] = [];
  jobs.forEach((a, i) => {
    jobs.forEach((b, j) => {
      if (j <= i || targetOf(a) !== targetOf(b)) return;
      const lock = LOCKS[a.run].find((l) => LOCKS[b.run].includes(l));
      if (lock === undefined) return;
      const together = [...new Set([...(runs[i]?.at ?? []), ...(runs[j]?.at ?? [])])]
        .filter((t) => due(i, t) && due(j, t))
        .sort((x, y) => x - y);
      const first = together[0];
      if (first !== undefined)
        clashes.push({
          first: a.name,
          second: b.name,
          lock,
          at: new Date(first),
          times: together.length,
        });
    });
  });
  return clashes;
}

/** One line per clash, with the fix for the usual case. */
export function describeClash(clash: Clash): string {
  return `jobs '${clash.first}' and '${clash.second}' both come due at ${clash.at.toISOString()} (${clash.times} times in the next 35 days) and both take the '${clash.lock}' lock: the one that starts second fails (exit 9); give them different times, or leave the other job's day out of one's cron (full on Sundays '0 1 * * 0', incremental the other days '0 1 * * 1-6')`;
}
