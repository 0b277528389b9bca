/** pgha drill and pgha drill list. */
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import type { OptionsOf } from "../../config/flags.js";
import { describeSystemError, PghaError, UsageError } from "../../errors.js";
import { formatMillis } from "../../human-units.js";
import { listDrillReports } from "../../repository/drill-report.js";
import { runDrill } from "../../restore/drill.js";
import { parseRestoreRequest, type RestoreTarget, type TargetFlags } from "../../restore/target.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { launcherPath } from "../launcher.js";
import { drillJson } from "../output-contract.js";
import { renderTable } from "../table.js";

/** --target-time also takes a time relative to now: -1h, -30m, -2d, -90s. */
export function drillTarget(opts: TargetFlags, now: Date): RestoreTarget {
  return parseRestoreRequest(opts, { now, relativeTimes: true }).target;
}

const seconds = formatMillis;

export async function drillCommand(opts: OptionsOf<"drill run">): Promise<number> {
  const { config, log } = loadContext(opts);
  const target = drillTarget(opts, new Date());
  let checkSql: string | undefined;
  if (opts.checkSql !== undefined) {
    try {
      checkSql = await readFile(opts.checkSql, "utf8");
    } catch (error) {
      throw new UsageError(
        `cannot read --check-sql ${opts.checkSql}: ${describeSystemError(error)}`,
        "give a file of SQL statements, one per line ending in ;",
      );
    }
  }
  const store = await openStore(config, log);
  // SIGTERM (systemd, the scheduler's grace kill) or SIGINT (Ctrl-C): the drill stops its
  // scratch server and removes its directory, then pgha exits as the signal would have.
  const interrupt = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (interruptedBy) return; // cleaning up already
    interruptedBy = name;
    log.warn(`drill: ${name} received: stopping the scratch server and removing its directory`);
    interrupt.abort(new Error(`interrupted by ${name}`));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  let outcome: Awaited<ReturnType<typeof runDrill>>;
  try {
    outcome = await runDrill(
      {
        store,
        config,
        log,
        now: () => new Date(),
        node: process.execPath,
        launcher: launcherPath(),
        signal: interrupt.signal,
      },
      {
        target,
        backupId: opts.backup,
        checkSql,
        keep: opts.keep === true,
        timeoutMs: opts.timeout,
        exclusive: opts.targetExclusive,
      },
    );
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  const { report, failure } = outcome;
  const json = opts.json === true;
  // A failed drill's report is printed once, beside the error object (cli/run.ts).
  const throwing = !interruptedBy && !report.passed && failure !== null;
  if (json && !throwing) process.stdout.write(`${JSON.stringify(drillJson(report), null, 2)}\n`);
  else if (!json) {
    const p = report.phases;
    process.stdout.write(
      renderTable(
        ["", ""],
        [
          ["drill", `${report.id}: ${report.passed ? "PASSED" : "FAILED"}`],
          ["backup", report.backup ?? "none"],
          ["target", report.target],
          ["reached", `last replayed commit ${report.lastReplayedCommit ?? "none"}`],
          [
            "time",
            `fetch ${seconds(p.fetch)}, start ${seconds(p.start)}, WAL replay ${seconds(p.replay)}, checks ${seconds(p.checks)}, total ${seconds(p.total)}`,
          ],
          ...report.checks.map((c): [string, string] => [
            c.passed ? "ok" : "FAILED",
            `${c.name}: ${c.detail}`,
          ]),
          ...(report.error ? ([["error", report.error]] as [string, string][]) : []),
        ],
        false,
      ),
    );
  }
  // 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports a
  // program the signal ended: not a pgha exit code of its own.
  if (interruptedBy) return 128 + constants.signals[interruptedBy];
  if (report.passed || failure === null) return 0;
  // The failure's own kind (storage, integrity, unrestorable, ...), not a reading of its text.
  if (failure !== "drillFailed") {
    throw new PghaError(failure, `drill ${report.id} failed: ${report.error}`, {
      hint: "the report is stored: 'pgha drill list'",
      details: json ? drillJson(report) : undefined,
    });
  }
  throw new PghaError(
    "drillFailed",
    `drill ${report.id} failed: ${
      report.error ??
      report.checks
        .filter((c) => !c.passed)
        .map((c) => `${c.name}: ${c.detail}`)
        .join("; ")
    }`,
    {
      hint: "run again with --keep to look at the restored data directory and its server.log",
      details: json ? drillJson(report) : undefined,
    },
  );
}

export async function drillListCommand(opts: OptionsOf<"drill list">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const reports = await listDrillReports(store, config.cluster);
  if (opts.json === true) {
    process.stdout.write(`${JSON.stringify(reports.map(drillJson), null, 2)}\n`);
    return 0;
  }
  if (reports.length === 0) {
    process.stdout.write(`no drills of cluster '${config.cluster}' yet\n`);
    return 0;
  }
  process.stdout.write(
    renderTable(
      ["id", "result", "backup", "target", "total", "replay"],
      reports.map((r) => [
        r.id,
        r.passed ? "passed" : "FAILED",
        r.backup ?? "-",
        r.target,
        seconds(r.phases.total),
        seconds(r.phases.replay),
      ]),
    ),
  );
  return 0;
}
