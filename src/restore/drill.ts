/**
 * runDrill: prove a backup restores. Plan as `pgha restore` does, fetch into a scratch
 * directory, start PostgreSQL there on a private socket with archiving OFF (a drill must
 * never write into the repository's WAL), wait until it reached the target and promoted,
 * run the checks, time every phase, stop it and remove the scratch directory. The report
 * is stored in the repository whatever the outcome.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { Config } from "../config/load.js";
import { type ExitCodeName, PghaError } from "../errors.js";
import type { Logger } from "../log.js";
import { findClientTools } from "../pg/client-tools.js";
import { freshId } from "../repository/backup-manifest.js";
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
}

export interface DrillRequest {
  target: RestoreTarget;
  backupId: string | undefined;
  /** SQL statements; each must return a row, and true if it returns a boolean. */
  checkSql: string | undefined;
  keep: boolean;
  timeoutMs: number;
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

export async function runDrill(deps: DrillDeps, request: DrillRequest): Promise<DrillOutcome> {
  const { store, config, log } = deps;
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
  let running = false;
  try {
    if (process.getuid?.() === 0) {
      throw new Error(
        "pgha drill starts PostgreSQL, which refuses to run as root: run it as the PostgreSQL user",
      );
    }
    const restoreDeps = { store, cluster: config.cluster, log, jobs: config.parallel };
    let t = clock();
    const outcome = await planFromRepository(restoreDeps, {
      target: request.target,
      timeline: "latest",
      exclusive: false,
      action: "promote",
      backupId: request.backupId,
    });
    if (!outcome.ok) throw refusalError(outcome.refusal);
    plan = outcome.plan;
    phases.plan = clock() - t;

    const tools = await findClientTools(config.pgBin, plan.backup.pgVersionNum);
    pgCtl = tools.path("pg_ctl");
    scratch = await mkdtemp(join(tmpdir(), "pgha-drill-"));
    pgdata = join(scratch, "data");
    const port = await freePort();
    t = clock();
    await applyRestore(restoreDeps, {
      plan,
      pgdata,
      tablespaceMap: new Map(),
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

    t = clock();
    await run(pgCtl, [
      "start",
      "-w",
      "-t",
      String(Math.ceil(request.timeoutMs / 1000)),
      "-D",
      pgdata,
      "-l",
      join(scratch, "server.log"),
    ]);
    running = true;
    phases.start = clock() - t;

    t = clock();
    const client = new pg.Client({
      host: scratch,
      port,
      user: process.env.PGUSER ?? userInfo().username,
      database: "postgres",
    });
    // A server that stops (a recovery that fails) ends the connection: the query fails.
    client.on("error", () => undefined);
    await client.connect();
    try {
      checks.push({ name: "connect", passed: true, detail: `connected on ${scratch}:${port}` });
      const deadline = clock() + request.timeoutMs;
      for (;;) {
        const { rows } = await client.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
        if (rows[0]?.r === false) break;
        if (clock() > deadline)
          throw new Error(`still in recovery after ${Math.round(request.timeoutMs / 1000)}s`);
        await new Promise((r) => setTimeout(r, 200));
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
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (thrown) {
    error = (thrown as Error).message;
    failure = drillFailureKind(thrown);
    if (scratch) {
      const logText = await readFile(join(scratch, "server.log"), "utf8").catch(() => "");
      const lines = logText.trim().split("\n");
      // The cause is in the FATAL/PANIC/ERROR lines, not in the shutdown that follows.
      const causes = lines.filter((l) => /\b(FATAL|PANIC|ERROR):/.test(l));
      const tail = (causes.length > 0 ? causes : lines).slice(-3).join(" / ");
      if (tail) error += ` (server log: ${tail})`;
    }
  } finally {
    if (running && pgCtl && pgdata)
      await run(pgCtl, ["stop", "-w", "-m", "fast", "-D", pgdata]).catch(() => undefined);
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
