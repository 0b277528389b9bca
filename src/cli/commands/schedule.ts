/** pgha schedule run (the daemon) and pgha schedule show. */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { DateTime } from "luxon";
import type { OptionsOf } from "../../config/flags.js";
import type { Config } from "../../config/load.js";
import { describeSystemError, NotFoundError, UsageError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { getJson, putJson } from "../../repository/json-object.js";
import { scheduleStateKey } from "../../repository/keys.js";
import { describeClash, findClashes } from "../../schedule/clashes.js";
import { type JobSpec, nextRuns, parseJobs } from "../../schedule/jobs.js";
import { LastErrorLine } from "../../schedule/notify.js";
import { type NotifyResult, Scheduler } from "../../schedule/runner.js";
import { collectStatuses } from "../../status/collect-status.js";
import { serveMetrics } from "../../status/metrics-server.js";
import { renderMetrics } from "../../status/metrics-text.js";
import type { ObjectStore } from "../../storage/object-store.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { checkJobArgs, jobArgv } from "../job-args.js";
import { nodeFlagsFor } from "../node-flags.js";
import { reportNote } from "../report.js";
import { renderTable } from "../table.js";

const systemZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

/** The jobs, each one's command line checked as it will run (a typo fails now). */
async function jobsFrom(config: {
  jobs: unknown;
  configFile: string | undefined;
}): Promise<JobSpec[]> {
  const jobs = parseJobs(config.jobs, systemZone());
  if (jobs.length === 0) {
    throw new UsageError(
      `no jobs to schedule${config.configFile ? ` in ${config.configFile}` : " (no config file)"}`,
      'add a "jobs" list to the config file, e.g. [{"name": "nightly", "cron": "0 2 * * *", "zone": "Europe/Brussels", "run": "backup"}]',
    );
  }
  for (const job of jobs) await checkJobArgs(job, config.configFile);
  return jobs;
}

export async function scheduleShowCommand(opts: OptionsOf<"schedule show">): Promise<number> {
  const { config } = loadContext(opts);
  const { count } = opts;
  const now = new Date();
  const jobs = await jobsFrom(config);
  for (const clash of findClashes(jobs, now)) reportNote(describeClash(clash), "warn");
  if (opts.json === true) {
    const shown = jobs.map((job) => ({
      name: job.name,
      run: job.run,
      args: job.args,
      cron: job.cron,
      zone: job.zone,
      // Instants in UTC, like every time pgha prints as JSON.
      nextRuns: nextRuns(job, now, count).map((at) => at.toISOString()),
    }));
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return 0;
  }
  const rows: string[][] = [];
  for (const job of jobs) {
    for (const [i, at] of nextRuns(job, now, count).entries()) {
      rows.push([
        i === 0 ? job.name : "",
        i === 0 ? `${job.run} ${job.args.join(" ")}`.trim() : "",
        i === 0 ? `${job.cron} (${job.zone})` : "",
        DateTime.fromJSDate(at).setZone(job.zone).toFormat("yyyy-MM-dd HH:mm:ss ZZ (ccc)"),
      ]);
    }
  }
  process.stdout.write(renderTable(["job", "runs", "when", "next runs, in the job's zone"], rows));
  return 0;
}

export async function scheduleRunCommand(opts: OptionsOf<"schedule run">): Promise<number> {
  const { config, log } = loadContext(opts);
  const jobs = await jobsFrom(config);
  for (const clash of findClashes(jobs, new Date())) log.warn(describeClash(clash));
  const store = await openStore(config, log);
  const launcher = resolve(process.argv[1] ?? "pgha");
  // The jobs log in the scheduler's format and to its log file (flags are not inherited).
  const childEnv = {
    ...process.env,
    PGHA_LOG_FORMAT: config.logFormat,
    ...(config.logFile ? { PGHA_LOG_FILE: config.logFile } : {}),
  };
  const scheduler = new Scheduler(jobs, {
    start(job) {
      const argv = jobArgv(job, config.configFile);
      // node's flags as the launcher would give them (this spawn skips the launcher).
      const args = [...nodeFlagsFor(argv), launcher, ...argv];
      const child = spawn(process.execPath, args, {
        stdio: ["ignore", "inherit", "pipe"],
        env: childEnv,
      });
      // Passed on as it comes (the job wrote its log file itself); its last error line kept.
      const tail = new LastErrorLine();
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => {
        process.stderr.write(chunk);
        tail.push(chunk);
      });
      return {
        done: new Promise((resolveDone) => {
          child.once("error", () => resolveDone({ code: null, signal: null }));
          child.once("close", (code, signal) =>
            resolveDone({ code, signal, lastError: tail.end() }),
          );
        }),
        kill: (signal) => child.kill(signal),
      };
    },
    async lastRun(job) {
      const key = scheduleStateKey(config.cluster, job.name);
      const state = await getJson<{ lastRun?: string }>(store, key, () => new NotFoundError(key));
      return state.lastRun ? new Date(state.lastRun) : undefined;
    },
    async recordRun(job, at) {
      await putJson(store, scheduleStateKey(config.cluster, job.name), {
        lastRun: at.toISOString(),
      });
    },
    now: () => new Date(),
    log,
    graceMs: config.scheduleGraceMs,
    onFailure: config.onFailure,
    notify: runNotification,
  });
  const endpoint =
    opts.metricsListen && (await metricsEndpoint(opts.metricsListen, store, config, log));
  log.info(`scheduling ${jobs.map((j) => `${j.name} (${j.cron} ${j.zone})`).join(", ")}`);
  const stop = () => void scheduler.stop();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await scheduler.start();
  await scheduler.done;
  await endpoint?.close();
  log.info("stopped");
  return 0;
}

/** A failure notification: /bin/sh -c COMMAND with the job's variables; its output is the scheduler's. */
function runNotification(command: string, env: Record<string, string>): Promise<NotifyResult> {
  return new Promise((resolveRun) => {
    const child = spawn("/bin/sh", ["-c", command], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, ...env },
    });
    child.once("error", (error) => resolveRun({ error: describeSystemError(error) }));
    child.once("close", (code, signal) => resolveRun({ code, signal }));
  });
}

/** --metrics-listen: the cluster's `pgha metrics`, served while the scheduler runs. */
async function metricsEndpoint(
  address: { host: string; port: number },
  store: ObjectStore,
  config: Config,
  log: Logger,
) {
  const produce = async () => {
    const options = { allClusters: false, askServer: true, now: () => Date.now() };
    return renderMetrics((await collectStatuses(store, config, log, options)).statuses);
  };
  try {
    const endpoint = await serveMetrics(address, produce, log);
    log.info(`serving metrics at http://${address.host}:${endpoint.port}/metrics`);
    return endpoint;
  } catch (error) {
    throw new UsageError(
      `--metrics-listen cannot listen on ${address.host}:${address.port}: ${describeSystemError(error)}`,
      "choose a free port on an address of this host",
    );
  }
}
