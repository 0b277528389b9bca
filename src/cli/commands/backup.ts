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
import { type Catalog, openCatalog, printCatalogInfo, printCatalogList } from "../catalog.js";
import { loadContext } from "../context.js";
import { makeProgress } from "../progress.js";
import { formatBytes } from "../table.js";

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

const BACKUPS: Catalog<BackupManifest> = {
  noun: "backup",
  plural: "backups",
  listIds: listBackupIds,
  read: readBackupManifest,
  resolve: resolveBackup,
  summarize,
  listColumns: ["id", "started", "duration", "size", "stored", "wal", "label"],
  listRow: (m) => [
    m.id + (m.pinned ? " (pinned)" : ""),
    m.startTime.replace(/\.\d+Z$/, "Z"),
    `${Math.round((Date.parse(m.stopTime) - Date.parse(m.startTime)) / 1000)}s`,
    formatBytes(m.rawBytes),
    formatBytes(m.storedBytes),
    `${m.startWal}..${m.stopWal.slice(16)}`,
    m.label ?? "",
  ],
  infoJson: (m) => ({ objects: m.objects, compression: m.compression }),
  infoRows: (m) => [
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
  ],
};

export async function backupListCommand(opts: OptionsOf<"backup list">): Promise<number> {
  return printCatalogList(BACKUPS, await openCatalog(opts));
}

export async function backupInfoCommand(
  ref: string,
  opts: OptionsOf<"backup info">,
): Promise<number> {
  return printCatalogInfo(BACKUPS, await openCatalog(opts), ref);
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
