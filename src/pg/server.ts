/**
 * The PostgreSQL server pgha talks to (node-postgres). Connection settings are the
 * standard libpq ones (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD) or --pg-conn.
 * The backup calls are chosen by server_version_num: pg_backup_start/stop on 15+,
 * the non-exclusive pg_start_backup/pg_stop_backup before.
 */
import pg from "pg";
import { parse } from "pg-connection-string";
import { PostgresError, UsageError } from "../errors.js";
import { parseSegmentFileName } from "../wal/names.js";
import { conninfoUri } from "./conninfo.js";

export interface ServerFacts {
  versionNum: number;
  version: string;
  inRecovery: boolean;
  dataDirectory: string;
  archiveMode: string;
  archiveCommand: string;
  archiveLibrary: string;
  walSegmentSize: number;
  systemIdentifier: string;
}

export interface TablespaceRow {
  oid: string;
  name: string;
  location: string;
}

export interface BackupStop {
  lsn: string;
  labelFile: string;
  tablespaceMap: string | null;
}

/** Without a connect_timeout anywhere (libpq's own default waits for ever). */
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** libpq's connect_timeout, in ms: the conninfo's, else PGCONNECT_TIMEOUT; 0 = no limit. */
export function connectTimeoutOf(
  fromConninfo: unknown,
  env: NodeJS.ProcessEnv = process.env,
): number {
  for (const value of [fromConninfo, env.PGCONNECT_TIMEOUT]) {
    if (value === undefined || value === null || value === "") continue;
    const seconds = Number(value);
    // libpq: values below 2 s count as 2 s; 0 (or negative) is no limit.
    if (Number.isFinite(seconds)) return seconds <= 0 ? 0 : Math.max(2, Math.trunc(seconds)) * 1000;
  }
  return DEFAULT_CONNECT_TIMEOUT_MS;
}

export class PgServer {
  private constructor(private readonly client: pg.Client) {}

  /**
   * database overrides the one the settings name (e.g. "postgres" for CREATE DATABASE);
   * connectTimeoutMs bounds the connection attempt; by default libpq's connect_timeout
   * (the conninfo's, else PGCONNECT_TIMEOUT; seconds, 0 waits for ever), else 30 s: a
   * server or firewall that never answers must not hang a cron job or `pgha check`.
   */
  static async connect(
    connectionString: string | undefined,
    database?: string,
    options: { connectTimeoutMs?: number } = {},
  ): Promise<PgServer> {
    let client: pg.Client;
    try {
      // Parsed here, so that `database` really overrides what the URI names.
      const parsed = connectionString ? parse(conninfoUri(connectionString)) : {};
      client = new pg.Client({
        // The backup session idles for as long as the upload takes: keep NATs from dropping it.
        keepAlive: true,
        ...(parsed as pg.ClientConfig),
        ...(database ? { database } : {}),
        connectionTimeoutMillis:
          options.connectTimeoutMs ??
          connectTimeoutOf((parsed as { connect_timeout?: unknown }).connect_timeout),
      });
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new PostgresError(`cannot use --pg-conn: ${(error as Error).message}`, {
        hint: "give a URI such as postgresql://user@host:5432/db?sslmode=require",
        cause: error,
      });
    }
    client.on("error", () => undefined);
    try {
      await client.connect();
      // A role's statement_timeout could cancel a spread checkpoint in pg_backup_start,
      // and idle_session_timeout (PostgreSQL 14+) the idle session of a long upload.
      await client.query("SET statement_timeout = 0");
      await client.query("SET idle_session_timeout = 0").catch(() => undefined);
    } catch (error) {
      throw new PostgresError(`cannot connect to PostgreSQL: ${(error as Error).message}`, {
        hint: "set --pg-conn (PGHA_PG_CONN) or the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE; pgha backup needs a superuser or a role with pg_read_all_settings and backup rights",
        cause: error,
      });
    }
    return new PgServer(client);
  }

  async query<T extends Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
  ): Promise<T[]> {
    try {
      return (await this.client.query<T>(sql, params)).rows;
    } catch (error) {
      throw new PostgresError(`query failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async facts(): Promise<ServerFacts> {
    const [row] = await this.query<Record<string, string | boolean>>(
      `SELECT current_setting('server_version_num') AS num,
              current_setting('server_version') AS version,
              pg_is_in_recovery() AS recovery,
              current_setting('data_directory') AS datadir,
              current_setting('archive_mode') AS archive_mode,
              current_setting('archive_command') AS archive_command,
              coalesce(current_setting('archive_library', true), '') AS archive_library,
              (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg,
              (SELECT unit FROM pg_settings WHERE name = 'wal_segment_size') AS seg_unit,
              (SELECT system_identifier::text FROM pg_control_system()) AS sysid`,
    );
    if (!row) throw new PostgresError("the server returned no settings");
    const units: Record<string, number> = { B: 1, "8kB": 8192, MB: 1024 * 1024 };
    return {
      versionNum: Number(row.num),
      version: String(row.version),
      inRecovery: row.recovery === true,
      dataDirectory: String(row.datadir),
      archiveMode: String(row.archive_mode),
      archiveCommand: String(row.archive_command),
      archiveLibrary: String(row.archive_library),
      walSegmentSize: Number(row.seg) * (units[String(row.seg_unit)] ?? 1),
      systemIdentifier: String(row.sysid),
    };
  }

  /**
   * Version and system identifier, for roles without superuser or pg_read_all_settings
   * (a dump role): the identifier is undefined when pg_control_system() is not allowed.
   */
  async basics(): Promise<{
    versionNum: number;
    version: string;
    systemIdentifier: string | undefined;
  }> {
    const [row] = await this.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    );
    let systemIdentifier: string | undefined;
    try {
      const [id] = await this.query<{ id: string }>(
        "SELECT system_identifier::text AS id FROM pg_control_system()",
      );
      systemIdentifier = id?.id;
    } catch {
      systemIdentifier = undefined;
    }
    return { versionNum: Number(row?.num), version: String(row?.version), systemIdentifier };
  }

  async tablespaces(): Promise<TablespaceRow[]> {
    return this.query<{ oid: string; name: string; location: string }>(
      `SELECT oid::text AS oid, spcname AS name, pg_tablespace_location(oid) AS location
         FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid`,
    );
  }

  async startBackup(versionNum: number, label: string, fast: boolean): Promise<string> {
    const sql =
      versionNum >= 150000
        ? "SELECT pg_backup_start($1, $2)::text AS lsn"
        : "SELECT pg_start_backup($1, $2, false)::text AS lsn";
    const [row] = await this.query<{ lsn: string }>(sql, [label, fast]);
    if (!row) throw new PostgresError("backup start returned nothing");
    return row.lsn;
  }

  /** Stops the backup without waiting for archiving: pgha waits on the repository instead. */
  async stopBackup(versionNum: number): Promise<BackupStop> {
    const sql =
      versionNum >= 150000
        ? "SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)"
        : "SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, false)";
    const [row] = await this.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
      sql,
    );
    if (!row) throw new PostgresError("backup stop returned nothing");
    const map = row.spcmapfile && row.spcmapfile.length > 0 ? row.spcmapfile : null;
    return { lsn: row.lsn, labelFile: row.labelfile, tablespaceMap: map };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

/** The fields pgha needs from a backup_label. */
export function parseBackupLabel(text: string): {
  startWal: string;
  timeline: number;
  fromStandby: boolean;
} {
  const startWal = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(text)?.[1];
  const startFile = startWal === undefined ? undefined : parseSegmentFileName(startWal);
  if (!startWal || !startFile)
    throw new PostgresError("the server returned a backup_label pgha cannot read");
  // START TIMELINE is new in PostgreSQL 11; the start WAL file's name carries it too.
  const named = /^START TIMELINE: (\d+)$/m.exec(text)?.[1];
  return {
    startWal,
    timeline: named ? Number(named) : startFile.timeline,
    fromStandby: /^BACKUP FROM: standby$/m.test(text),
  };
}
