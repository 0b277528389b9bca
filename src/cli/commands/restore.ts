/** pgha restore plan, pgha restore, pgha standby. */
import { resolve } from "node:path";
import type { DeltaPlan } from "../../backup/delta-plan.js";
import { parseTablespaceMap } from "../../backup/fetch-backup.js";
import { planTablespaceTargets, type TablespaceTarget } from "../../backup/tablespace-targets.js";
import type { OptionsOf } from "../../config/flags.js";
import type { Config } from "../../config/load.js";
import { parseDuration } from "../../config/values.js";
import { UsageError } from "../../errors.js";
import {
  applyRestore,
  planFromRepository,
  refusalError,
  requirePlan,
} from "../../restore/apply.js";
import type { ArchiveEnd } from "../../restore/archive-end.js";
import { decideDataOwner } from "../../restore/data-owner.js";
import { planDeltaRestore } from "../../restore/delta.js";
import { deltaTablespaceMap } from "../../restore/delta-target.js";
import type { PlanOutcome, RestorePlan } from "../../restore/plan.js";
import { restoreCommandLine } from "../../restore/recovery-config.js";
import { type Setting, standbySettings } from "../../restore/recovery-settings.js";
import {
  parseRestoreRequest,
  type RestoreRequest,
  type TargetFlags,
} from "../../restore/target.js";
import { lockRestoreTarget } from "../../restore/target-lock.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { launcherPath } from "../launcher.js";
import { formatBytes, renderTable } from "../table.js";

/** The target flags of restore and restore plan (--target-time takes -1h as drill does). */
export function requestFrom(opts: TargetFlags): RestoreRequest {
  return parseRestoreRequest(opts, { now: new Date(), relativeTimes: true });
}

function printPlan(plan: RestorePlan, settings: Setting[], tablespaces: TablespaceTarget[]): void {
  const b = plan.backup;
  const rows: [string, string][] = [
    [
      "backup",
      `${b.id} (${b.startTime} .. ${b.stopTime}, timeline ${b.timeline}, ${b.startLsn} .. ${b.stopLsn})`,
    ],
    ...(plan.chain.length > 0
      ? [
          [
            "chain",
            `incremental: read with ${plan.chain.map((c) => c.id).join(", ")} (oldest first)`,
          ] as [string, string],
        ]
      : []),
    [
      "timelines",
      plan.path.map((s) => `${s.timeline}${s.end ? ` (until ${s.end})` : ""}`).join(" -> "),
    ],
    [
      "WAL",
      `${plan.wal.first} .. ${plan.wal.last}: ${plan.wal.count} segments, ${formatBytes(plan.wal.bytes)}, no gaps`,
    ],
    ["archive end", describeArchiveEnd(plan.wal.end)],
    [
      "download",
      `${plan.chain.length > 0 ? "at most " : ""}${formatBytes(plan.downloadBytes)} (backup ${formatBytes(plan.downloadBytes - plan.wal.bytes)}, WAL ${formatBytes(plan.wal.bytes)})`,
    ],
    ...tablespaces.map((t, i): [string, string] => [
      i === 0 ? "tablespaces" : "",
      `${t.name} (${t.oid}) -> ${t.location}${t.mapped ? " (--tablespace-map)" : " (original location)"}`,
    ]),
    ...settings.map(([k, v], i): [string, string] => [i === 0 ? "settings" : "", `${k} = '${v}'`]),
  ];
  process.stdout.write(renderTable(["", ""], rows, false));
  for (const note of plan.notes) process.stdout.write(`note: ${note}\n`);
}

/** restore --delta: what it keeps, writes and removes. */
function printDelta(delta: DeltaPlan): void {
  const rows: [string, string][] = [
    [
      "delta: kept",
      `${delta.kept} files (${formatBytes(delta.keptBytes)}): already equal to the backup's`,
    ],
    [
      "delta: rewritten",
      `${delta.rewritten} files, ${formatBytes(delta.writeBytes)} written (${delta.reuse.size} of them in place, their equal blocks kept)`,
    ],
    [
      "delta: removed",
      `${delta.removed.length} files (${formatBytes(delta.removedBytes)}): not in the backup`,
    ],
  ];
  process.stdout.write(renderTable(["delta", ""], rows, false));
}

/** The newest segment on the path and the time no recovery along it can reach. */
function describeArchiveEnd(end: ArchiveEnd): string {
  const when =
    end.time === undefined
      ? ""
      : end.clock === "database"
        ? `, pushed ${end.time}: the newest restorable time is before it`
        : `, stored ${end.time} (the store's clock)`;
  return `${end.segment} on timeline ${end.timeline}${when}`;
}

/** `restore plan --json`: the plan, or why it cannot succeed (then the command exits 11). */
function planJson(outcome: PlanOutcome, settings: Setting[], tablespaces: TablespaceTarget[]) {
  if (!outcome.ok) {
    return {
      restorable: false,
      reasons: outcome.refusal.reasons,
      gaps: outcome.refusal.gaps,
      ...(outcome.refusal.archiveEnd ? { archiveEnd: outcome.refusal.archiveEnd } : {}),
    };
  }
  const plan = outcome.plan;
  return {
    restorable: true,
    backup: {
      id: plan.backup.id,
      startTime: plan.backup.startTime,
      stopTime: plan.backup.stopTime,
      timeline: plan.backup.timeline,
      startLsn: plan.backup.startLsn,
      stopLsn: plan.backup.stopLsn,
      storedBytes: plan.backup.storedBytes,
    },
    chain: plan.chain.map((c) => c.id),
    targetTimeline: plan.targetTimeline,
    path: plan.path,
    wal: {
      first: plan.wal.first,
      last: plan.wal.last,
      count: plan.wal.count,
      bytes: plan.wal.bytes,
    },
    archiveEnd: plan.wal.end,
    gaps: [],
    notes: plan.notes,
    settings: Object.fromEntries(settings),
    downloadBytes: plan.downloadBytes,
    tablespaces,
  };
}

/** restore_command for the restored server: this pgha, by absolute paths. */
function restoreCommand(config: Config): string {
  return restoreCommandLine(config, process.execPath, launcherPath());
}

export async function restorePlanCommand(opts: OptionsOf<"restore plan">): Promise<number> {
  const { config, log } = loadContext(opts);
  const request = requestFrom(opts);
  const store = await openStore(config, log);
  const outcome = await planFromRepository({ store, cluster: config.cluster, log }, request);
  const settings: Setting[] = outcome.ok
    ? [["restore_command", restoreCommand(config)], ...outcome.plan.settings]
    : [];
  // Where each tablespace would go: nothing outside the data directory is written elsewhere.
  const tablespaces = outcome.ok
    ? planTablespaceTargets(
        outcome.plan.backup,
        config.pgdata === undefined ? undefined : resolve(config.pgdata),
        parseTablespaceMap(opts.tablespaceMap),
      )
    : [];
  const json = planJson(outcome, settings, tablespaces);
  if (!outcome.ok) {
    // With --json the refusal is printed once, beside the error object (cli/run.ts).
    throw refusalError(outcome.refusal, json);
  }
  if (opts.json === true) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else printPlan(outcome.plan, settings, tablespaces);
  return 0;
}

function requirePgdata(config: Config, hint: string): string {
  const pgdata = config.pgdata;
  if (!pgdata) throw new UsageError("--pgdata is required", hint);
  return resolve(pgdata);
}

export async function restoreRunCommand(opts: OptionsOf<"restore run">): Promise<number> {
  const { config, log } = loadContext(opts);
  const pgdata = requirePgdata(
    config,
    opts.delta === true
      ? "name the stopped server's data directory to restore --delta into"
      : "name the new, empty data directory to restore into",
  );
  const request = requestFrom(opts);
  // Run as root: decided (or refused) before anything is downloaded.
  const owner = await decideDataOwner(pgdata, process.geteuid?.());
  const store = await openStore(config, log);
  const deps = { store, cluster: config.cluster, log, jobs: config.parallel };
  // Plan first: a target that cannot be reached is refused before anything is downloaded.
  const plan = await requirePlan(deps, request);
  const settings: Setting[] = [["restore_command", restoreCommand(config)], ...plan.settings];
  // --delta: a tablespace goes where the target's own link points, unless mapped.
  const tablespaceMap =
    opts.delta === true
      ? await deltaTablespaceMap(pgdata, plan.backup, parseTablespaceMap(opts.tablespaceMap))
      : parseTablespaceMap(opts.tablespaceMap);
  printPlan(plan, settings, planTablespaceTargets(plan.backup, pgdata, tablespaceMap));
  // Off unless asked: a copy that archives into the source repository makes its new
  // timeline the one "latest" follows for every later restore and standby.
  const archive = opts.archive === true;
  // One restore at a time into the directory, from the delta's reading of it on.
  const release = await lockRestoreTarget(pgdata, log);
  try {
    const delta =
      opts.delta === true
        ? await planDeltaRestore(plan, pgdata, tablespaceMap, config.parallel, log)
        : undefined;
    if (delta) printDelta(delta);
    await applyRestore(deps, {
      plan,
      pgdata,
      tablespaceMap,
      recovery: {
        mode: "recovery",
        settings,
        server: archive ? [] : [["archive_mode", "off"]],
        comment: `pgha restore of backup ${plan.backup.id} at ${new Date().toISOString()}`,
      },
      owner,
      delta,
      // A storage failure keeps what was written: the same command with --delta finishes it.
      resumable: true,
    });
  } finally {
    await release();
  }
  const after =
    request.target.kind === "latest"
      ? "replays all archived WAL, then promotes (a new timeline)"
      : `replays WAL up to ${request.target.kind === "immediate" ? "the end of the backup" : `the target`}, then ${request.action === "promote" ? "promotes (a new timeline)" : request.action === "pause" ? "pauses: check the data, then SELECT pg_wal_replay_resume() promotes" : "shuts down"}`;
  process.stdout.write(
    `\nrestored backup ${plan.backup.id} into ${pgdata}\nstart it (as the PostgreSQL user): pg_ctl -D ${pgdata} start\nthe server ${after}${archive ? "; it archives its new timeline with the backup's archive_command" : "; archiving is off (--archive keeps it, for a real failover)"}\n`,
  );
  return 0;
}

export async function standbyCommand(opts: OptionsOf<"standby">): Promise<number> {
  const { config, log } = loadContext(opts);
  const pgdata = requirePgdata(config, "name the new, empty data directory of the standby");
  // Without a conninfo the standby follows the repository alone (restore_command only).
  const conninfo = opts.primaryConninfo === "" ? undefined : opts.primaryConninfo;
  if (conninfo === undefined && opts.slot !== undefined)
    throw new UsageError(
      "--slot needs --primary-conninfo",
      "a replication slot is on the primary: name the primary with --primary-conninfo, or drop --slot for a standby that follows the repository alone",
    );
  const owner = await decideDataOwner(pgdata, process.geteuid?.());
  // Checked by the flag table; kept as written for the summary below.
  const delayMs = opts.delay === undefined ? undefined : parseDuration(opts.delay);
  const store = await openStore(config, log);
  const deps = { store, cluster: config.cluster, log, jobs: config.parallel };
  // The backup's own WAL must be there; the rest comes by streaming or from the archive.
  const plan = await requirePlan(deps, {
    target: { kind: "immediate" },
    timeline: "latest",
    exclusive: false,
    action: "pause",
    backupId: opts.backup,
  });
  const release = await lockRestoreTarget(pgdata, log);
  try {
    await applyRestore(deps, {
      plan,
      pgdata,
      tablespaceMap: new Map(),
      recovery: {
        mode: "standby",
        settings: standbySettings({
          primaryConninfo: conninfo,
          slot: opts.slot,
          restoreCommand: restoreCommand(config),
          delayMs,
        }),
        server: [],
        comment: `pgha standby from backup ${plan.backup.id} at ${new Date().toISOString()}`,
      },
      owner,
    });
  } finally {
    await release();
  }
  const delayed = delayMs !== undefined ? `, applying commits ${opts.delay} late` : "";
  const follows =
    conninfo === undefined
      ? `it follows the repository alone (no primary_conninfo): it replays each WAL segment once it is archived${delayed}`
      : `it streams from the primary${delayed}, and falls back to the archive when streaming breaks`;
  process.stdout.write(
    `standby built from backup ${plan.backup.id} in ${pgdata}\nstart it (as the PostgreSQL user): pg_ctl -D ${pgdata} start\n${follows}\n`,
  );
  return 0;
}
