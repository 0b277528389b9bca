/** pgha backup, backup list, backup info, backup fetch: thin layers over src/backup. */

import { fetchBaseBackup, parseTablespaceMap } from "../../backup/fetch-backup.js";
import { takeBaseBackup } from "../../backup/take-backup.js";
import type { OptionsOf } from "../../config/flags.js";
import { PgServer } from "../../pg/server.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupSummary,
  resolveBackup,
} from "../../repository/backup-manifest.js";
import { backupPinKey, backupVerifyKey } from "../../repository/keys.js";
import { withPin } from "../../repository/pin.js";
import { readVerifyRecord, type VerifyRecord } from "../../repository/verify-record.js";
import { gatherArchiveFacts } from "../../restore/facts.js";
import { lockRestoreTarget } from "../../restore/target-lock.js";
import type { ObjectStore } from "../../storage/object-store.js";
import { openStore } from "../../storage/open-store.js";
import { verifiedThroughChain } from "../../verify/chain-verdict.js";
import { backupRestorability, type Restorability } from "../../verify/wal-continuity.js";
import { type Catalog, openCatalog, printCatalogInfo, printCatalogList } from "../catalog.js";
import { loadContext } from "../context.js";
import { makeProgress } from "../progress.js";
import { formatBytes, formatDuration } from "../table.js";

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
        log: progress.log,
        now: () => new Date(),
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        progress: progress.update,
        connectDatabase: (database) =>
          PgServer.connect(config.pgConn, database, { connectTimeoutMs: 10_000 }),
      },
      {
        fast: opts.fast,
        label: opts.label,
        pin: opts.pin,
        type: opts.type,
        maxIncr: config.backupMaxIncr,
        wholePercent: config.backupIncrWhole,
      },
    );
    progress.print(manifest.id);
    return 0;
  } finally {
    progress.finish();
    await server.close();
  }
}

/** What `backup list` adds to each backup from the rest of the repository. */
export interface BackupListExtra {
  restorability: Restorability;
  /** Its last verify record, failed when a chain member's last one failed. */
  verified: (VerifyRecord & { failedChain: string[] }) | undefined;
}

/**
 * Each backup's restorability (its WAL from start to end archived and its chain's
 * manifests there: the restore planner's checks, from one listing of the archive) and its
 * last verify record, which a chain member's failed one fails too.
 */
async function annotateBackups(
  store: ObjectStore,
  cluster: string,
  backups: BackupManifest[],
): Promise<(m: BackupManifest) => BackupListExtra> {
  const facts = await gatherArchiveFacts(store, cluster, backups);
  const records = new Map<string, VerifyRecord | undefined>();
  for (const m of backups)
    records.set(m.id, await readVerifyRecord(store, backupVerifyKey(cluster, m.id)));
  const extras = new Map<string, BackupListExtra>();
  for (const m of backups) {
    extras.set(m.id, {
      restorability: backupRestorability(facts, m),
      verified: verifiedThroughChain(
        records.get(m.id),
        (m.chain ?? []).map((id) => ({ id, record: records.get(id) })),
      ),
    });
  }
  return (m) => extras.get(m.id) as BackupListExtra;
}

/**
 * A manifest as `backup list` keeps it: without its file list, only how many files it
 * has, so that listing many backups of 100,000 files holds one file list at a time.
 */
type ListedBackup = BackupManifest & { fileCount?: number };

const fileCount = (m: ListedBackup) => m.fileCount ?? m.files.length;

/**
 * The summary `backup list --json` prints per backup: a stable shape for scripts. The list
 * adds restorable, gaps (missing WAL segments between its start and end) and lastVerified.
 */
export function summarize(m: ListedBackup, extra?: BackupListExtra) {
  return {
    id: m.id,
    cluster: m.cluster,
    // Incremental backups: a backup needs every backup of its chain to restore.
    type: m.type ?? "full",
    parent: m.parent ?? null,
    chain: m.chain ?? [],
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
    files: fileCount(m),
    tablespaces: m.tablespaces,
    ...(extra === undefined
      ? {}
      : {
          restorable: extra.restorability.restorable,
          gaps: extra.restorability.gaps,
          lastVerified:
            extra.verified === undefined
              ? null
              : {
                  time: extra.verified.time,
                  ok: extra.verified.ok,
                  objects: extra.verified.objects,
                  hashed: extra.verified.hashed,
                  failedChain: extra.verified.failedChain,
                },
        }),
  };
}

function restorableCell(extra: BackupListExtra | undefined): string {
  if (extra === undefined || extra.restorability.restorable) return "yes";
  const gaps = extra.restorability.gaps.length;
  return gaps > 0
    ? `NO: ${gaps} WAL segment${gaps === 1 ? "" : "s"} missing`
    : "NO: see restore plan --backup";
}

function verifiedCell(extra: BackupListExtra | undefined): string {
  const record = extra?.verified;
  if (record === undefined) return "never";
  const sampled = record.hashed < record.objects ? " (sample)" : "";
  const chain =
    record.failedChain.length > 0 ? ` (chain: ${record.failedChain.join(", ")} failed)` : "";
  return `${record.time.replace(/\.\d+Z$/, "Z")} ${record.ok ? "ok" : "FAILED"}${sampled}${chain}`;
}

const BACKUPS: Catalog<ListedBackup, BackupListExtra> = {
  noun: "backup",
  plural: "backups",
  listIds: listBackupIds,
  // `pinned` as `backup pin|unpin` left it (repository/pin.ts).
  read: async (store, cluster, id) =>
    withPin(store, backupPinKey(cluster, id), await readBackupSummary(store, cluster, id)),
  resolve: async (store, cluster, ref) => {
    const m = await resolveBackup(store, cluster, ref);
    return withPin(store, backupPinKey(cluster, m.id), m);
  },
  summarize,
  annotate: annotateBackups,
  listColumns: [
    "id",
    "type",
    "started",
    "duration",
    "size",
    "stored",
    "wal",
    "restorable",
    "verified",
    "label",
  ],
  listRow: (m, extra) => [
    m.id + (m.pinned ? " (pinned)" : ""),
    m.type === "incr" ? `incr of ${m.parent}` : "full",
    m.startTime.replace(/\.\d+Z$/, "Z"),
    formatDuration((Date.parse(m.stopTime) - Date.parse(m.startTime)) / 1000),
    formatBytes(m.rawBytes),
    formatBytes(m.storedBytes),
    `${m.startWal}..${m.stopWal.slice(16)}`,
    restorableCell(extra),
    verifiedCell(extra),
    m.label ?? "",
  ],
  infoJson: (m) => ({ objects: m.objects, compression: m.compression }),
  infoRows: (m) => [
    ["id", m.id],
    ["cluster", `${m.cluster} (system ${m.systemIdentifier}, PostgreSQL ${m.pgVersion})`],
    ["label", m.label ?? ""],
    ["pinned", m.pinned ? "yes" : "no"],
    [
      "type",
      m.type === "incr"
        ? `incremental of ${m.parent}; restoring it needs ${(m.chain ?? []).join(", ")}`
        : "full",
    ],
    ["taken", `${m.startTime} .. ${m.stopTime}${m.fromStandby ? " from a standby" : ""}`],
    ["timeline", String(m.timeline)],
    ["lsn", `${m.startLsn} .. ${m.stopLsn}`],
    ["wal needed", `${m.startWal} .. ${m.stopWal}`],
    [
      "size",
      `${formatBytes(m.rawBytes)} in ${fileCount(m)} files, stored as ${formatBytes(m.storedBytes)} (${m.compression})`,
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
  // One restore at a time into the directory (restore/target-lock.ts).
  const release = await lockRestoreTarget(dir, log);
  try {
    await fetchBaseBackup(
      { store, log: progress.log, progress: progress.update, jobs: config.parallel },
      manifest,
      dir,
      remap,
    );
  } finally {
    progress.finish();
    await release();
  }
  return 0;
}
