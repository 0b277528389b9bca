/** pgha restore plan, pgha restore, pgha standby. */
import { resolve } from "node:path";
import { fetchBaseBackup, parseTablespaceMap } from "../../backup/fetch-backup.js";
import type { FlagsOf, OptionsOf } from "../../config/flags.js";
import type { Config } from "../../config/load.js";
import { parseDuration } from "../../config/values.js";
import { PghaError, UsageError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { gatherRestoreFacts } from "../../restore/facts.js";
import {
  planRestore,
  type RestorePlan,
  RestorePlanError,
  type RestoreRequest,
  type RestoreTarget,
  type TargetAction,
  type TargetTimeline,
} from "../../restore/plan.js";
import { restoreCommandLine, writeRecoveryConfig } from "../../restore/recovery-config.js";
import { openStore } from "../../storage/open-store.js";
import { parseLsn } from "../../wal/names.js";
import { loadContext } from "../context.js";
import { formatBytes, renderTable } from "../table.js";

/** The target flags; drill run takes some of them. */
export type TargetFlags = Partial<FlagsOf<"restore run">>;

/** The target options: at most one target; absolute times need a zone. */
export function requestFrom(opts: TargetFlags): RestoreRequest {
  const given: RestoreTarget[] = [];
  const time = opts.targetTime;
  if (time !== undefined) {
    if (!/(Z|[+-]\d\d(:?\d\d)?)$/i.test(time.trim()) || Number.isNaN(Date.parse(time))) {
      throw new UsageError(
        `--target-time '${time}' is not an ISO 8601 time with a zone`,
        "for example 2026-11-21T14:03:27+01:00 or 2026-11-21T13:03:27Z",
      );
    }
    // Kept as written (microseconds included), but with a numeric offset: PostgreSQL reads
    // recovery_target_time before it loads time zone abbreviations, so "Z" is refused.
    given.push({ kind: "time", time: time.trim().replace(/[zZ]$/, "+00:00").replace("T", " ") });
  }
  const lsn = opts.targetLsn;
  if (lsn !== undefined) {
    if (parseLsn(lsn) === undefined)
      throw new UsageError(`--target-lsn '${lsn}' is not an LSN`, "for example 0/16B3748");
    given.push({ kind: "lsn", lsn: lsn.toUpperCase() });
  }
  const xid = opts.targetXid;
  if (xid !== undefined) {
    if (!/^\d+$/.test(xid))
      throw new UsageError(`--target-xid '${xid}' is not a transaction id`, "for example 123456");
    given.push({ kind: "xid", xid });
  }
  const name = opts.targetName;
  if (name !== undefined) given.push({ kind: "name", name });
  if (opts.latest === true) given.push({ kind: "latest" });
  if (opts.immediate === true) given.push({ kind: "immediate" });
  if (given.length > 1) {
    throw new UsageError(
      "give one target",
      "one of --target-time, --target-lsn, --target-xid, --target-name, --latest, --immediate",
    );
  }
  const rawTimeline = opts.targetTimeline ?? "latest";
  let timeline: TargetTimeline;
  if (rawTimeline === "latest" || rawTimeline === "current") timeline = rawTimeline;
  else if (/^\d+$/.test(rawTimeline) && Number(rawTimeline) > 0) timeline = Number(rawTimeline);
  else
    throw new UsageError(
      `--target-timeline '${rawTimeline}' is not latest, current or a number`,
      "for example --target-timeline 2",
    );
  const action = (opts.targetAction ?? "pause") as TargetAction;
  if (!["promote", "pause", "shutdown"].includes(action)) {
    throw new UsageError(
      `--target-action '${action}' is not promote, pause or shutdown`,
      "pause is PostgreSQL's default",
    );
  }
  return {
    target: given[0] ?? { kind: "latest" },
    timeline,
    exclusive: opts.targetExclusive === true,
    action,
    backupId: opts.backup,
  };
}

async function makePlan(config: Config, log: Logger, request: RestoreRequest) {
  const store = await openStore(config, log);
  const facts = await gatherRestoreFacts(store, config.cluster, log);
  try {
    return { store, plan: planRestore(facts, request) };
  } catch (error) {
    if (error instanceof RestorePlanError) {
      throw new PghaError("unrestorable", `cannot restore: ${error.message}`, {
        hint:
          error.gaps.length > 0
            ? "the archive has a hole: WAL after it is unusable for this target; choose a target before the gap or a backup after it"
            : "'pgha backup list' shows the backups and their times",
      });
    }
    throw error;
  }
}

function printPlan(plan: RestorePlan, settings: [string, string][]): void {
  const b = plan.backup;
  const rows: [string, string][] = [
    [
      "backup",
      `${b.id} (${b.startTime} .. ${b.stopTime}, timeline ${b.timeline}, ${b.startLsn} .. ${b.stopLsn})`,
    ],
    [
      "timelines",
      plan.path.map((s) => `${s.timeline}${s.end ? ` (until ${s.end})` : ""}`).join(" -> "),
    ],
    [
      "WAL",
      `${plan.wal.first} .. ${plan.wal.last}: ${plan.wal.count} segments, ${formatBytes(plan.wal.bytes)}, no gaps`,
    ],
    [
      "download",
      `${formatBytes(plan.downloadBytes)} (backup ${formatBytes(b.storedBytes)}, WAL ${formatBytes(plan.wal.bytes)})`,
    ],
    ...settings.map(([k, v], i): [string, string] => [i === 0 ? "settings" : "", `${k} = '${v}'`]),
  ];
  process.stdout.write(renderTable(["", ""], rows, false));
  for (const note of plan.notes) process.stdout.write(`note: ${note}\n`);
}

function planJson(plan: RestorePlan, settings: [string, string][]) {
  return {
    backup: {
      id: plan.backup.id,
      startTime: plan.backup.startTime,
      stopTime: plan.backup.stopTime,
      timeline: plan.backup.timeline,
      startLsn: plan.backup.startLsn,
      stopLsn: plan.backup.stopLsn,
      storedBytes: plan.backup.storedBytes,
    },
    targetTimeline: plan.targetTimeline,
    path: plan.path,
    wal: {
      first: plan.wal.first,
      last: plan.wal.last,
      count: plan.wal.count,
      bytes: plan.wal.bytes,
    },
    gaps: plan.gaps,
    notes: plan.notes,
    settings: Object.fromEntries(settings),
    downloadBytes: plan.downloadBytes,
  };
}

function recoverySettings(config: Config, plan: RestorePlan): [string, string][] {
  const launcher = resolve(process.argv[1] ?? "pgha");
  return [
    ["restore_command", restoreCommandLine(config, process.execPath, launcher)],
    ...plan.settings,
  ];
}

export async function restorePlanCommand(opts: OptionsOf<"restore plan">): Promise<number> {
  const { config, log } = loadContext(opts);
  const { plan } = await makePlan(config, log, requestFrom(opts));
  const settings = recoverySettings(config, plan);
  if (opts.json === true)
    process.stdout.write(`${JSON.stringify(planJson(plan, settings), null, 2)}\n`);
  else printPlan(plan, settings);
  return 0;
}

export async function restoreRunCommand(opts: OptionsOf<"restore run">): Promise<number> {
  const { config, log } = loadContext(opts);
  const pgdata = opts.settings.pgdata ?? config.pgdata;
  if (!pgdata)
    throw new UsageError(
      "--pgdata is required",
      "name the new, empty data directory to restore into",
    );
  const request = requestFrom(opts);
  // Plan first: a target that cannot be reached is refused before anything is downloaded.
  const { store, plan } = await makePlan(config, log, request);
  const settings = recoverySettings(config, plan);
  printPlan(plan, settings);
  const remap = parseTablespaceMap(opts.tablespaceMap);
  await fetchBaseBackup({ store, log, progress: () => undefined }, plan.backup, pgdata, remap);
  // Off unless asked: a copy that archives into the source repository makes its new
  // timeline the one "latest" follows for every later restore and standby.
  const archive = opts.archive === true;
  const server: [string, string][] = archive ? [] : [["archive_mode", "off"]];
  await writeRecoveryConfig(
    resolve(pgdata),
    plan.backup.pgVersionNum,
    settings,
    server,
    "recovery",
    `pgha restore of backup ${plan.backup.id} at ${new Date().toISOString()}`,
  );
  const after =
    request.target.kind === "latest"
      ? "replays all archived WAL, then promotes (a new timeline)"
      : `replays WAL up to ${request.target.kind === "immediate" ? "the end of the backup" : `the target`}, then ${request.action === "promote" ? "promotes (a new timeline)" : request.action === "pause" ? "pauses: check the data, then SELECT pg_wal_replay_resume() promotes" : "shuts down"}`;
  process.stdout.write(
    `\nrestored backup ${plan.backup.id} into ${resolve(pgdata)}\nstart it (as the PostgreSQL user): pg_ctl -D ${resolve(pgdata)} start\nthe server ${after}${archive ? "; it archives its new timeline with the backup's archive_command" : "; archiving is off (--archive keeps it, for a real failover)"}\n`,
  );
  return 0;
}

export async function standbyCommand(opts: OptionsOf<"standby">): Promise<number> {
  const { config, log } = loadContext(opts);
  const pgdata = opts.settings.pgdata ?? config.pgdata;
  if (!pgdata)
    throw new UsageError(
      "--pgdata is required",
      "name the new, empty data directory of the standby",
    );
  const conninfo = opts.primaryConninfo;
  if (!conninfo)
    throw new UsageError(
      "--primary-conninfo is required",
      "for example 'host=primary port=5432 user=replicator'",
    );
  // Checked by the flag table; kept as written for the summary below.
  const delay = opts.delay === undefined ? undefined : `${parseDuration(opts.delay)}ms`;
  // The backup's own WAL must be there; the rest comes by streaming (or the archive).
  const { store, plan } = await makePlan(config, log, {
    target: { kind: "immediate" },
    timeline: "latest",
    exclusive: false,
    action: "pause",
    backupId: opts.backup,
  });
  await fetchBaseBackup({ store, log, progress: () => undefined }, plan.backup, pgdata, new Map());
  const settings: [string, string][] = [
    ["primary_conninfo", conninfo],
    ...(opts.slot ? ([["primary_slot_name", opts.slot]] as [string, string][]) : []),
    [
      "restore_command",
      restoreCommandLine(config, process.execPath, resolve(process.argv[1] ?? "pgha")),
    ],
    ["recovery_target_timeline", "latest"],
    ...(delay ? ([["recovery_min_apply_delay", delay]] as [string, string][]) : []),
  ];
  await writeRecoveryConfig(
    resolve(pgdata),
    plan.backup.pgVersionNum,
    settings,
    [],
    "standby",
    `pgha standby from backup ${plan.backup.id} at ${new Date().toISOString()}`,
  );
  process.stdout.write(
    `standby built from backup ${plan.backup.id} in ${resolve(pgdata)}\nstart it (as the PostgreSQL user): pg_ctl -D ${resolve(pgdata)} start\nit streams from the primary${delay ? `, applying commits ${opts.delay} late` : ""}, and falls back to the archive when streaming breaks\n`,
  );
  return 0;
}
