/**
 * Scheduled jobs: parsed from the config file's "jobs" list, and their run times, as pure
 * functions of an injected "after" instant (cron-parser in the job's IANA zone, so
 * daylight-saving changes follow the zone: a 02:00 job on a spring-forward night runs at
 * 03:00, on an autumn night once, at the first 02:00).
 *
 *   "jobs": [{ "name": "nightly-backup", "cron": "0 2 * * *", "zone": "Europe/Brussels",
 *              "run": "backup", "args": ["--fast"], "catchUp": true,
 *              "onFailure": "mail -s \"pgha $PGHA_JOB failed\" dba@example.com" }]
 *
 * cron has 5 fields, or 6 with seconds first.
 */
import { CronExpressionParser } from "cron-parser";
import { IANAZone } from "luxon";
import { UsageError } from "../errors.js";

export const JOB_KINDS = ["backup", "dump", "prune", "drill"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export interface JobSpec {
  name: string;
  cron: string;
  zone: string;
  run: JobKind;
  args: string[];
  /** Run once at start when a run was missed while the daemon was down. */
  catchUp: boolean;
  /** A /bin/sh command run when this job fails (replaces --on-failure for it). */
  onFailure?: string | undefined;
}

const hint =
  'each job is {"name": "nightly", "cron": "0 2 * * *", "zone": "Europe/Brussels", "run": "backup|dump|prune|drill", "args": [], "catchUp": true, "onFailure": "<sh command>"}';

export function parseJobs(raw: unknown, defaultZone: string): JobSpec[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new UsageError("the config file's 'jobs' must be a list", hint);
  const names = new Set<string>();
  return raw.map((item, index) => {
    const job = item as Record<string, unknown>;
    const name = typeof job?.name === "string" ? job.name : `#${index + 1}`;
    const fail = (why: string) => new UsageError(`job '${name}': ${why}`, hint);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name))
      throw fail("name must be 1-63 of A-Z a-z 0-9 . _ -");
    if (names.has(name)) throw fail("two jobs have this name");
    names.add(name);
    const zone = typeof job.zone === "string" ? job.zone : defaultZone;
    if (!IANAZone.isValidZone(zone))
      throw fail(`'${zone}' is not a time zone (use an IANA name such as Europe/Brussels)`);
    if (typeof job.cron !== "string") throw fail("needs a cron expression");
    // cron-parser fills missing fields in ('15 2 *' is every minute of 15 February).
    const fields = job.cron.trim().split(/\s+/).length;
    if (!job.cron.trim().startsWith("@") && (fields < 5 || fields > 6)) {
      throw fail(
        `invalid cron expression '${job.cron}': it has ${fields} field${fields === 1 ? "" : "s"}, cron needs 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`,
      );
    }
    try {
      CronExpressionParser.parse(job.cron, { tz: zone });
    } catch (error) {
      throw fail(`invalid cron expression '${job.cron}': ${(error as Error).message}`);
    }
    if (!JOB_KINDS.includes(job.run as JobKind))
      throw fail(`'run' must be one of ${JOB_KINDS.join(", ")}`);
    if (
      job.args !== undefined &&
      (!Array.isArray(job.args) || job.args.some((a) => typeof a !== "string"))
    ) {
      throw fail("'args' must be a list of strings");
    }
    if (job.onFailure !== undefined && (typeof job.onFailure !== "string" || !job.onFailure.trim()))
      throw fail("'onFailure' must be a shell command (a non-empty string)");
    return {
      name,
      cron: job.cron,
      zone,
      run: job.run as JobKind,
      args: (job.args as string[] | undefined) ?? [],
      catchUp: job.catchUp !== false,
      ...(typeof job.onFailure === "string" ? { onFailure: job.onFailure } : {}),
    };
  });
}

/** The next `count` run times strictly after `after`. */
export function nextRuns(job: Pick<JobSpec, "cron" | "zone">, after: Date, count: number): Date[] {
  const times = CronExpressionParser.parse(job.cron, { currentDate: after, tz: job.zone });
  return Array.from({ length: count }, () => times.next().toDate());
}

/** The latest run time at or before `at`, if the expression has one. */
export function previousRun(job: Pick<JobSpec, "cron" | "zone">, at: Date): Date | undefined {
  const times = CronExpressionParser.parse(job.cron, {
    currentDate: new Date(at.getTime() + 1),
    tz: job.zone,
  });
  try {
    return times.prev().toDate();
  } catch {
    return undefined;
  }
}
