/**
 * What status is made from (I/O only): the repository's catalog of one cluster, the bytes
 * it stores by kind, and what the server says when it can be reached. An unreachable
 * server, or one that refuses a query, is a note, never a failure: status is most needed
 * when something is down. The repository failing is a failure (its exit code).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { chainIds } from "../backup/chain-manifest.js";
import { describeSystemError, PghaError } from "../errors.js";
import { isErrno } from "../local-files.js";
import type { Logger } from "../log.js";
import { PgServer } from "../pg/server.js";
import { listDrillReports } from "../repository/drill-report.js";
import { type DumpManifest, listDumpIds, readDumpManifest } from "../repository/dump-manifest.js";
import { clusterPrefix } from "../repository/keys.js";
import { decodePushedAt } from "../repository/object-meta.js";
import { readFailedVerifies } from "../repository/verify-record.js";
import { gatherRestoreFacts } from "../restore/facts.js";
import type { ObjectStore } from "../storage/object-store.js";
import { parseWalFileName } from "../wal/names.js";
import { spoolDir } from "../wal/spool.js";
import type {
  ArchiverStats,
  ClusterFacts,
  RepositoryBytes,
  ServerFacts,
  SpoolStatus,
} from "./plan-status.js";

export async function gatherClusterFacts(
  store: ObjectStore,
  cluster: string,
  log: Logger,
): Promise<ClusterFacts> {
  const restore = await gatherRestoreFacts(store, cluster, log);
  // The newest segment's push time: the facts read it for path ends, which need a backup.
  let newest: string | undefined;
  for (const name of restore.wal.keys())
    if (parseWalFileName(name)?.kind === "segment" && (newest === undefined || name > newest))
      newest = name;
  const object = newest === undefined ? undefined : restore.wal.get(newest);
  if (object?.key && object.pushedAt === undefined) {
    const info = await store.head(object.key);
    object.pushedAt = info ? decodePushedAt(info.metadata) : undefined;
  }
  const dumps: DumpManifest[] = [];
  for (const id of await listDumpIds(store, cluster)) {
    try {
      dumps.push(await readDumpManifest(store, cluster, id));
    } catch (error) {
      if (!(error instanceof PghaError) || error.exit === "storage") throw error;
      log.warn(`dump set ${id} is left out: ${error.message}`);
    }
  }
  const drills = await listDrillReports(store, cluster);
  // The newest backup is only as good as its chain: what the last verify of each said.
  const newestBackup = [...restore.backups]
    .sort((a, b) => a.stopTime.localeCompare(b.stopTime))
    .at(-1);
  // Its own record whatever failed; its chain's members by their data only (their own
  // WAL is not the newest backup's to replay).
  const failedVerifies = newestBackup
    ? [
        ...(await readFailedVerifies(store, cluster, chainIds(newestBackup), "data")),
        ...(await readFailedVerifies(store, cluster, [newestBackup.id], "any")),
      ]
    : [];
  return {
    cluster,
    restore,
    dumps,
    drills,
    bytes: await bytesByKind(store, cluster),
    failedVerifies,
  };
}

/** One listing of the cluster's prefix, its bytes by the kind its key says. */
async function bytesByKind(store: ObjectStore, cluster: string): Promise<RepositoryBytes> {
  const bytes: RepositoryBytes = { wal: 0, backups: 0, dumps: 0, other: 0 };
  const prefix = clusterPrefix(cluster);
  for await (const entry of store.list(prefix)) {
    const kind = entry.key.slice(prefix.length).split("/")[0];
    if (kind === "wal" || kind === "backups" || kind === "dumps") bytes[kind] += entry.size;
    else bytes.other += entry.size;
  }
  return bytes;
}

interface ArchiverRow extends Record<string, unknown> {
  archived_count: string;
  last_archived_wal: string | null;
  last_archived_time: Date | null;
  failed_count: string;
  last_failed_wal: string | null;
  last_failed_time: Date | null;
}

/**
 * The server's side: pg_stat_archiver, the files waiting (.ready, through
 * pg_ls_archive_statusdir: superuser or pg_monitor), and the asynchronous archiver's
 * status.json in the data directory's spool when this host can read it.
 */
export async function gatherServerFacts(
  pgConn: string | undefined,
  pgdata: string | undefined,
  connectTimeoutMs = 5000,
): Promise<ServerFacts> {
  const facts: ServerFacts = { reachable: false, notes: [] };
  let server: PgServer | undefined;
  try {
    server = await PgServer.connect(pgConn, undefined, { connectTimeoutMs });
    facts.reachable = true;
    // A server that hangs must not hang status: these queries are instant when it is well.
    await server.query("SET statement_timeout = '10s'").catch(() => undefined);
  } catch (error) {
    facts.notes.push(`the server is not reachable: ${(error as Error).message}`);
  }
  let dataDirectory = pgdata;
  if (server) {
    try {
      const [row] = await server.query<ArchiverRow>(
        `SELECT archived_count, last_archived_wal, last_archived_time,
                failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver`,
      );
      if (row) facts.archiver = archiverStats(row);
    } catch (error) {
      facts.notes.push(`pg_stat_archiver: ${(error as Error).message}`);
    }
    try {
      const rows = await server.query<{ name: string; seg: string }>(
        `SELECT name, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg
           FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`,
      );
      let bytes = 0;
      for (const { name, seg } of rows) {
        // A segment's size is the server's; history and backup history files are small.
        if (parseWalFileName(name.slice(0, -".ready".length))?.kind === "segment")
          bytes += Number(seg);
      }
      facts.ready = { files: rows.length, bytes };
    } catch (error) {
      facts.notes.push(
        `the .ready count is unknown (pg_ls_archive_statusdir needs superuser or pg_monitor): ${(error as Error).message}`,
      );
    }
    if (dataDirectory === undefined) {
      const [row] = await server
        .query<{ dir: string }>("SELECT current_setting('data_directory') AS dir")
        .catch(() => []);
      dataDirectory = row?.dir;
    }
    await server.close();
  }
  if (dataDirectory !== undefined) {
    const spool = await readSpoolStatus(dataDirectory).catch((error: unknown) => {
      facts.notes.push(`the archiver's status.json: ${describeSystemError(error)}`);
      return undefined;
    });
    if (spool) facts.spool = spool;
  }
  return facts;
}

function archiverStats(row: ArchiverRow): ArchiverStats {
  const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());
  return {
    archivedCount: Number(row.archived_count),
    lastArchivedWal: row.last_archived_wal,
    lastArchivedTime: iso(row.last_archived_time),
    failedCount: Number(row.failed_count),
    lastFailedWal: row.last_failed_wal,
    lastFailedTime: iso(row.last_failed_time),
  };
}

/** status.json of the data directory's asynchronous archiver; undefined when it never ran. */
async function readSpoolStatus(pgdata: string): Promise<SpoolStatus | undefined> {
  let text: string;
  try {
    text = await readFile(join(spoolDir(pgdata, "archive"), "status.json"), "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as SpoolStatus;
  return {
    running: parsed.running === true,
    updatedAt: String(parsed.updatedAt),
    backlog: parsed.backlog,
    overLimit: parsed.overLimit === true,
    stored: Number(parsed.stored),
    lastStored: parsed.lastStored ?? null,
    lastError: parsed.lastError ?? null,
  };
}
