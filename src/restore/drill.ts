/**
 * runDrill: prove a backup restores. Plan as `pgha restore` does, fetch into a scratch
 * directory, start PostgreSQL there on a private socket with archiving OFF (a drill must
 * never write into the repository's WAL), wait until it reached the target and promoted,
 * run the checks, time every phase, stop it and remove the scratch directory. The report
 * is stored in the repository whatever the outcome.
 *
 * deps.signal interrupts a drill (the CLI aborts it on SIGTERM and SIGINT, which is also
 * how the scheduler's grace kill arrives): the phase under way stops, the scratch server is
 * stopped (immediate: its data is thrown away) and the scratch directory removed (unless
 * --keep), within the seconds the scheduler waits before SIGKILL; the report says
 * "interrupted". PostgreSQL refuses to run as root, so a drill run as root is refused
 * before it touches the repository.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { Config } from "../config/load.js";
import { type ExitCodeName, PghaError, UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import { findClientTools } from "../pg/client-tools.js";
import { freshId } from "../repository/backup-manifest.js";
import { unknownClusterError } from "../repository/clusters.js";
import { type DrillCheck, type DrillReport, writeDrillReport } from "../repository/drill-report.js";
import { drillKey } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import { stopSpoolProcesses } from "../wal/spool.js";
import { applyRestore, planFromRepository, refusalError } from "./apply.js";
import type { RestorePlan } from "./plan.js";
import { restoreCommandLine } from "./recovery-config.js";
import { describeTarget, type RestoreTarget } from "./target.js";

export interface DrillDeps {
  store: ObjectStore;
  config: Config;
  log: Logger;
  now: () => Date;
  /** The pgha launcher the restored server's restore_command runs. */
  node: string;
  launcher: string;
  /** Aborted: stop and clean up now (its reason, an Error, names why). */
  signal?: AbortSignal | undefined;
}

export interface DrillRequest {
  target: RestoreTarget;
  backupId: string | undefined;
  /** SQL statements; each must return a row, and true if it returns a boolean. */
  checkSql: string | undefined;
  keep: boolean;
  timeoutMs: number;
  /** Stop just before the target (--target-exclusive), as restore find's commands do. */
  exclusive?: boolean;
}

const run = promisify(execFile);

/** The drill report's target: the kind, or the time (reports are compared across drills). */
function describe(target: RestoreTarget): string {
  return target.kind === "time" ? describeTarget(target) : target.kind;
}

/** A TCP port nothing listens on (the socket file is named after it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 5432));
    });
  });
}

/** Splits a SQL file into statements (semicolon at the end of a line ends one). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, "").trim())
    .filter((s) => s !== "");
}

export interface DrillOutcome {
  report: DrillReport;
  /** What went wrong, as an exit-code kind; null when the drill passed. */
  failure: ExitCodeName | null;
}

/**
 * The exit-code kind of what stopped a drill: a pgha error keeps its own (a storage
 * failure 7, a corrupt object 6, a plan that cannot succeed 11); anything else (the
 * server did not come up, recovery did not end) is the drill's failure, 12.
 */
export function drillFailureKind(failure: unknown): ExitCodeName {
  return failure instanceof PghaError ? failure.exit : "drillFailed";
}

/** The sleep between promotion polls, cut short by an abort. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Waits up to ms for a file to exist. */
async function appears(path: string, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !existsSync(path) && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 50));
}

/** Why an aborted drill stopped: the abort's reason. */
function abortMessage(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : String(reason ?? "interrupted");
}

export async function runDrill(deps: DrillDeps, request: DrillRequest): Promise<DrillOutcome> {
  const { store, config, log, signal } = deps;
  if (process.geteuid?.() === 0) {
    throw new UsageError(
      "pgha drill starts PostgreSQL, which refuses to run as root",
      "run it as the PostgreSQL user, e.g. sudo -u postgres pgha drill ...",
    );
  }
  // A --cluster the repository does not hold: not found, before a report would make it one.
  const unknown = await unknownClusterError(store, config.cluster);
  if (unknown) throw unknown;
  const started = deps.now();
  const clock = () => deps.now().getTime();
  const id = await freshId(store, (candidate) => drillKey(config.cluster, candidate), started);
  const phases = { plan: 0, fetch: 0, start: 0, replay: 0, checks: 0, total: 0 };
  const checks: DrillCheck[] = [];
  let plan: RestorePlan | undefined;
  let lastReplayedCommit: string | null = null;
  let error: string | null = null;
  let failure: ExitCodeName | null = null;
  let scratch: string | undefined;
  let pgCtl: string | undefined;
  let pgdata: string | undefined;
  let starting = false;
  let running = false;
  try {
    const restoreDeps = { store, cluster: config.cluster, log, jobs: config.parallel, signal };
    let t = clock();
    const outcome = await planFromRepository(restoreDeps, {
      target: request.target,
      timeline: "latest",
      exclusive: request.exclusive === true,
      action: "promote",
      backupId: request.backupId,
    });
    if (!outcome.ok) throw refusalError(outcome.refusal);
    plan = outcome.plan;
    phases.plan = clock() - t;
    signal?.throwIfAborted();

    const tools = await findClientTools(config.pgBin, plan.backup.pgVersionNum);
    pgCtl = tools.path("pg_ctl");
    scratch = await mkdtemp(join(tmpdir(), "pgha-drill-"));
    pgdata = join(scratch, "data");
    // Every tablespace inside the scratch directory: its original location may be in use
    // (the cluster's own host), and whatever a drill writes goes with the scratch.
    const tablespaces = join(scratch, "tablespaces");
    const tablespaceMap = new Map(
      plan.backup.tablespaces.map((ts) => [ts.oid, join(tablespaces, ts.oid)]),
    );
    const port = await freePort();
    t = clock();
    await applyRestore(restoreDeps, {
      plan,
      pgdata,
      tablespaceMap,
      recovery: {
        mode: "recovery",
        settings: [
          ["restore_command", restoreCommandLine(config, deps.node, deps.launcher)],
          ...plan.settings,
        ],
        server: [
          ["archive_mode", "off"],
          ["listen_addresses", ""],
          ["unix_socket_directories", scratch],
          ["port", String(port)],
        ],
        comment: `pgha drill ${id}`,
      },
    });
    phases.fetch = clock() - t;
    signal?.throwIfAborted();

    t = clock();
    starting = true;
    // Killing pg_ctl on an abort may leave the postmaster it launched: the cleanup below
    // stops whatever postmaster.pid names.
    await run(
      pgCtl,
      [
        "start",
        "-w",
        "-t",
        String(Math.ceil(request.timeoutMs / 1000)),
        "-D",
        pgdata,
        "-l",
        join(scratch, "server.log"),
      ],
      signal ? { signal } : {},
    );
    running = true;
    phases.start = clock() - t;
    signal?.throwIfAborted();

    t = clock();
    const client = new pg.Client({
      host: scratch,
      port,
      user: process.env.PGUSER ?? userInfo().username,
      database: "postgres",
    });
    // A server that stops (a recovery that fails) ends the connection: the query fails.
    client.on("error", () => undefined);
    // An abort ends the connection too: a running check fails at once.
    const disconnect = () => void client.end().catch(() => undefined);
    signal?.addEventListener("abort", disconnect, { once: true });
    try {
      await client.connect();
      checks.push({ name: "connect", passed: true, detail: `connected on ${scratch}:${port}` });
      const deadline = clock() + request.timeoutMs;
      for (;;) {
        const { rows } = await client.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
        if (rows[0]?.r === false) break;
        if (clock() > deadline)
          throw new Error(`still in recovery after ${Math.round(request.timeoutMs / 1000)}s`);
        await pause(200, signal);
        signal?.throwIfAborted();
      }
      phases.replay = clock() - t;
      checks.push({ name: "promoted", passed: true, detail: "out of recovery" });

      t = clock();
      const { rows } = await client.query<{ ts: Date | null }>(
        "SELECT pg_last_xact_replay_timestamp() AS ts",
      );
      const last = rows[0]?.ts ?? null;
      lastReplayedCommit = last ? last.toISOString() : null;
      const target = request.target;
      const atTarget = target.kind !== "time" || last === null || last.getTime() <= target.at;
      checks.push({
        name: "target",
        passed: atTarget,
        detail: `last replayed commit ${lastReplayedCommit ?? "none"}${target.kind === "time" ? `, target ${target.text}` : ""}`,
      });
      for (const [index, statement] of splitStatements(request.checkSql ?? "").entries()) {
        signal?.throwIfAborted();
        try {
          const result = await client.query(statement);
          const first = result.rows[0] as Record<string, unknown> | undefined;
          const value = first ? Object.values(first)[0] : undefined;
          const passed = first !== undefined && value !== false;
          checks.push({
            name: `sql ${index + 1}`,
            passed,
            detail: `${statement.split("\n")[0]?.slice(0, 80)} -> ${first === undefined ? "no rows" : JSON.stringify(value)}`,
          });
        } catch (sqlError) {
          checks.push({
            name: `sql ${index + 1}`,
            passed: false,
            detail: `${statement.slice(0, 80)} -> ${(sqlError as Error).message}`,
          });
        }
      }
      phases.checks = clock() - t;
      signal?.throwIfAborted();
    } finally {
      signal?.removeEventListener("abort", disconnect);
      await client.end().catch(() => undefined);
    }
  } catch (thrown) {
    error = (thrown as Error).message;
    failure = drillFailureKind(thrown);
    if (signal?.aborted) error = abortMessage(signal);
    else if (scratch) {
      const logText = await readFile(join(scratch, "server.log"), "utf8").catch(() => "");
      const lines = logText.trim().split("\n");
      // The cause is in the FATAL/PANIC/ERROR lines, not in the shutdown that follows.
      const causes = lines.filter((l) => /\b(FATAL|PANIC|ERROR):/.test(l));
      const tail = (causes.length > 0 ? causes : lines).slice(-3).join(" / ");
      if (tail) error += ` (server log: ${tail})`;
    }
  } finally {
    // Interrupted, pg_ctl may have been killed mid-start: the postmaster it forked writes
    // its pid file early, and is stopped by that.
    const pidFile = pgdata && join(pgdata, "postmaster.pid");
    const interrupted = starting && signal?.aborted === true;
    if (pidFile && interrupted) await appears(pidFile, 1000);
    if (pgCtl && pgdata && pidFile && (running || (interrupted && existsSync(pidFile)))) {
      const mode = signal?.aborted ? "immediate" : "fast";
      await run(pgCtl, ["stop", "-w", "-m", mode, "-D", pgdata]).catch(() => undefined);
    }
    // The restore_command's prefetcher writes into the scratch data directory: stop it first.
    if (pgdata) await stopSpoolProcesses(pgdata).catch(() => undefined);
    if (scratch && !request.keep) await rm(scratch, { recursive: true, force: true });
  }
  phases.total = clock() - started.getTime();
  const report: DrillReport = {
    format: 1,
    kind: "drill",
    id,
    cluster: config.cluster,
    passed: error === null && checks.length > 0 && checks.every((c) => c.passed),
    startedAt: started.toISOString(),
    finishedAt: deps.now().toISOString(),
    target: describe(request.target),
    backup: plan?.backup.id ?? null,
    phases,
    lastReplayedCommit,
    checks,
    error,
  };
  await writeDrillReport(store, report);
  if (request.keep && scratch) log.info(`drill ${id}: scratch directory kept at ${scratch}`);
  return { report, failure: report.passed ? null : (failure ?? "drillFailed") };
}
