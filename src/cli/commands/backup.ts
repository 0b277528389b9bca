/** pgha backup, backup list, backup info, backup fetch: thin layers over src/backup. */
import { fetchBaseBackup, parseTablespaceMap } from "../../backup/fetch-backup.js";
import { takeBaseBackup } from "../../backup/take-backup.js";
import type { OptionsOf } from "../../config/flags.js";
import { PgServer } from "../../pg/server.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
  resolveBackup,
} from "../../repository/backup-manifest.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { makeProgress } from "../progress.js";
import { readEach } from "../read-each.js";
import { formatBytes, renderTable } from "../table.js";

export async function backupCreateCommand(opts: OptionsOf<"backup create">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const server = await PgServer.connect(config.pgConn);
  const progress = makeProgress("backup", log);
  try {
    const manifest = await takeBaseBackup(
      {
        store,
        cluster: config.cluster,
        compression: config.compress,
        server,
        pgdata: config.pgdata,
        archiveTimeoutMs: config.archiveTimeoutMs,
        lockTtlMs: 5 * 60_000,
        jobs: config.parallel,
        log,
        now: () => new Date(),
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        progress: progress.update,
      },
      { fast: opts.fast, label: opts.label, pin: opts.pin },
    );
    process.stdout.write(`${manifest.id}\n`);
    return 0;
  } finally {
    progress.finish();
    await server.close();
  }
}

/** The summary `backup list --json` prints per backup: a stable shape for scripts. */
export function summarize(m: BackupManifest) {
  return {
    id: m.id,
    cluster: m.cluster,
    label: m.label,
    pinned: m.pinned,
    startTime: m.startTime,
    stopTime: m.stopTime,
    timeline: m.timeline,
    startLsn: m.startLsn,
    stopLsn: m.stopLsn,
    startWal: m.startWal,
    stopWal: m.stopWal,
    pgVersion: m.pgVersion,
    systemIdentifier: m.systemIdentifier,
    fromStandby: m.fromStandby,
    rawBytes: m.rawBytes,
    storedBytes: m.storedBytes,
    files: m.files.length,
    tablespaces: m.tablespaces,
  };
}

export async function backupListCommand(opts: OptionsOf<"backup list">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const manifests = await readEach(
    await listBackupIds(store, config.cluster),
    (id) => readBackupManifest(store, config.cluster, id),
    "backup",
    log,
  );
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(manifests.map(summarize), null, 2)}\n`);
    return 0;
  }
  if (manifests.length === 0) {
    process.stdout.write(`no backups of cluster '${config.cluster}' in ${store.url}\n`);
    return 0;
  }
  process.stdout.write(
    renderTable(
      ["id", "started", "duration", "size", "stored", "wal", "label"],
      manifests.map((m) => [
        m.id + (m.pinned ? " (pinned)" : ""),
        m.startTime.replace(/\.\d+Z$/, "Z"),
        `${Math.round((Date.parse(m.stopTime) - Date.parse(m.startTime)) / 1000)}s`,
        formatBytes(m.rawBytes),
        formatBytes(m.storedBytes),
        `${m.startWal}..${m.stopWal.slice(16)}`,
        m.label ?? "",
      ]),
    ),
  );
  return 0;
}

export async function backupInfoCommand(
  ref: string,
  opts: OptionsOf<"backup info">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const m = await resolveBackup(store, config.cluster, ref);
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ ...summarize(m), objects: m.objects, compression: m.compression }, null, 2)}\n`,
    );
    return 0;
  }
  const rows: [string, string][] = [
    ["id", m.id],
    ["cluster", `${m.cluster} (system ${m.systemIdentifier}, PostgreSQL ${m.pgVersion})`],
    ["label", m.label ?? ""],
    ["pinned", m.pinned ? "yes" : "no"],
    ["taken", `${m.startTime} .. ${m.stopTime}${m.fromStandby ? " from a standby" : ""}`],
    ["timeline", String(m.timeline)],
    ["lsn", `${m.startLsn} .. ${m.stopLsn}`],
    ["wal needed", `${m.startWal} .. ${m.stopWal}`],
    [
      "size",
      `${formatBytes(m.rawBytes)} in ${m.files.length} files, stored as ${formatBytes(m.storedBytes)} (${m.compression})`,
    ],
    [
      "tablespaces",
      m.tablespaces.map((t) => `${t.name} (${t.oid}) at ${t.location}`).join(", ") || "none",
    ],
  ];
  process.stdout.write(renderTable(["", ""], rows, false));
  return 0;
}

export async function backupFetchCommand(
  ref: string,
  dir: string,
  opts: OptionsOf<"backup fetch">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const manifest = await resolveBackup(store, config.cluster, ref);
  const remap = parseTablespaceMap(opts.tablespaceMap);
  const progress = makeProgress("fetch", log);
  try {
    await fetchBaseBackup(
      { store, log, progress: progress.update, jobs: config.parallel },
      manifest,
      dir,
      remap,
    );
  } finally {
    progress.finish();
  }
  return 0;
}
