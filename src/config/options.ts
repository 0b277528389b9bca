/**
 * THE option table. Every setting pgha reads is declared here once: its flag, its
 * environment variable, its config-file key (the flag name without dashes), its parser,
 * its default and its documentation. The CLI builds its flags from this table, the
 * loader resolves values from it (flags > environment > config file > default), and
 * `pgha options` / the README reference print it.
 */
import type { Compression } from "../compress/compression.js";
import type { S3Checksums } from "../storage/s3-settings.js";
import {
  DEFAULT_ZSTD_LEVEL,
  type LogLevel,
  parseBoolean,
  parseChoice,
  parseClusterName,
  parseCompression,
  parseCount,
  parseDuration,
  parseHttpUrl,
  parseRepoLocation,
  parseRetentionSpan,
  parseSize,
  parseText,
  type RepoLocation,
} from "./values.js";

export type OptionGroup =
  | "repository"
  | "s3"
  | "pgdata"
  | "postgres"
  | "retention"
  | "schedule"
  | "general";

export interface OptionSpec<T> {
  /** Flag name without dashes; also the config-file key. */
  readonly name: string;
  readonly env: string;
  /** Placeholder shown in help, e.g. "<url>". */
  readonly placeholder: string;
  readonly group: OptionGroup;
  readonly description: string;
  /** The default as users read it in help and README. */
  readonly defaultText: string;
  readonly parse: (raw: string) => T;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/** The embedded default repository: like pgBackRest's /var/lib/pgbackrest. */
export const DEFAULT_REPO = "/var/lib/pgha";
export const DEFAULT_CONFIG_FILE = "/etc/pgha/pgha.json";

export const OPTIONS = {
  repo: option<RepoLocation>({
    name: "repo",
    env: "PGHA_REPO",
    placeholder: "<path|url>",
    group: "repository",
    description: "repository: an absolute local path, file:///path, or s3://bucket/prefix",
    defaultText: DEFAULT_REPO,
    parse: parseRepoLocation,
  }),
  cluster: option<string>({
    name: "cluster",
    env: "PGHA_CLUSTER",
    placeholder: "<name>",
    group: "repository",
    description: "cluster name inside the repository (one repository holds many clusters)",
    defaultText: "main",
    parse: parseClusterName,
  }),
  compress: option<Compression>({
    name: "compress",
    env: "PGHA_COMPRESS",
    placeholder: "<zstd[:level]|none>",
    group: "repository",
    description: "compression of stored data: zstd with level 1-19, or none",
    defaultText: `zstd:${DEFAULT_ZSTD_LEVEL}`,
    parse: parseCompression,
  }),
  retryTimeout: option<number>({
    name: "retry-timeout",
    env: "PGHA_RETRY_TIMEOUT",
    placeholder: "<duration>",
    group: "repository",
    description:
      "total time to keep retrying transient storage failures (5xx, throttling, resets, timeouts)",
    defaultText: "60s",
    parse: parseDuration,
  }),
  s3Endpoint: option<string>({
    name: "s3-endpoint",
    env: "PGHA_S3_ENDPOINT",
    placeholder: "<url>",
    group: "s3",
    description: "S3-compatible endpoint (MinIO, Ceph, ...); unset means AWS S3",
    defaultText: "AWS S3",
    parse: parseHttpUrl,
  }),
  s3Region: option<string>({
    name: "s3-region",
    env: "PGHA_S3_REGION",
    placeholder: "<region>",
    group: "s3",
    description: "S3 region",
    defaultText: "AWS_REGION, else us-east-1",
    parse: parseText,
  }),
  s3ForcePathStyle: option<boolean>({
    name: "s3-force-path-style",
    env: "PGHA_S3_FORCE_PATH_STYLE",
    placeholder: "<bool>",
    group: "s3",
    description: "address buckets as endpoint/bucket instead of bucket.endpoint",
    defaultText: "true with --s3-endpoint, else false",
    parse: parseBoolean,
  }),
  s3Checksums: option<S3Checksums>({
    name: "s3-checksums",
    env: "PGHA_S3_CHECKSUMS",
    placeholder: "<when_supported|when_required>",
    group: "s3",
    description:
      "AWS SDK request/response checksums; many S3-compatible stores need when_required (pgha always sends Content-MD5)",
    defaultText: "when_required with --s3-endpoint, else when_supported",
    parse: parseChoice(["when_supported", "when_required"] as const),
  }),
  s3StorageClass: option<string>({
    name: "s3-storage-class",
    env: "PGHA_S3_STORAGE_CLASS",
    placeholder: "<class>",
    group: "s3",
    description: "storage class of new objects (STANDARD, STANDARD_IA, ...)",
    defaultText: "the bucket's default",
    parse: (raw) => {
      const text = parseText(raw).toUpperCase();
      if (!/^[A-Z_]+$/.test(text)) throw new Error(`'${raw}' is not a storage class name`);
      return text;
    },
  }),
  s3Sse: option<"AES256" | "aws:kms">({
    name: "s3-sse",
    env: "PGHA_S3_SSE",
    placeholder: "<AES256|aws:kms>",
    group: "s3",
    description: "server-side encryption of new objects",
    defaultText: "none requested",
    parse: (raw) => (raw.trim() === "AES256" ? "AES256" : parseChoice(["aws:kms"] as const)(raw)),
  }),
  s3SseKmsKeyId: option<string>({
    name: "s3-sse-kms-key-id",
    env: "PGHA_S3_SSE_KMS_KEY_ID",
    placeholder: "<key-id>",
    group: "s3",
    description: "KMS key for --s3-sse aws:kms",
    defaultText: "the account's default key",
    parse: parseText,
  }),
  s3PartSize: option<number>({
    name: "s3-part-size",
    env: "PGHA_S3_PART_SIZE",
    placeholder: "<size>",
    group: "s3",
    description: "multipart part size, 5MiB-1GiB; bodies up to one part are sent in a single PUT",
    defaultText: "16MiB",
    parse: (raw) => {
      const size = parseSize(raw);
      // One part is held in memory; Node's Buffer limit and sanity cap it at 1 GiB.
      if (size < 5 * 1024 * 1024 || size > 1024 ** 3) {
        throw new Error(`'${raw}' is outside 5MiB-1GiB`);
      }
      return size;
    },
  }),
  pgdata: option<string>({
    name: "pgdata",
    env: "PGHA_PGDATA",
    placeholder: "<dir>",
    group: "pgdata",
    description:
      "data directory: what backup reads (default: the server's data_directory), where wal-fetch looks for standby.signal (default: the working directory, as PostgreSQL runs it)",
    defaultText: "see description",
    parse: parseText,
  }),
  pgConn: option<string>({
    name: "pg-conn",
    env: "PGHA_PG_CONN",
    placeholder: "<conninfo>",
    group: "postgres",
    description:
      "connection URI for the server (postgresql://user@host:5432/db?sslmode=require); the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD apply too",
    defaultText: "libpq environment",
    parse: parseText,
  }),
  pgBin: option<string>({
    name: "pg-bin",
    env: "PGHA_PG_BIN",
    placeholder: "<dir>",
    group: "postgres",
    description:
      "directory of the PostgreSQL client programs (pg_dump, pg_dumpall, pg_restore, psql); they must be at least the server's version",
    defaultText: "/usr/lib/postgresql/<server major>/bin if present, else PATH",
    parse: parseText,
  }),
  archiveTimeout: option<number>({
    name: "archive-timeout",
    env: "PGHA_ARCHIVE_TIMEOUT",
    placeholder: "<duration>",
    group: "postgres",
    description: "how long a backup waits for the WAL it needs to reach the repository",
    defaultText: "2m",
    parse: parseDuration,
  }),
  keepLast: option<number>({
    name: "keep-last",
    env: "PGHA_KEEP_LAST",
    placeholder: "<n>",
    group: "retention",
    description: "keep the n newest backups (and, separately, dump sets)",
    defaultText: "0",
    parse: parseCount,
  }),
  keepHourly: option<number>({
    name: "keep-hourly",
    env: "PGHA_KEEP_HOURLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent hours that have one",
    defaultText: "0",
    parse: parseCount,
  }),
  keepDaily: option<number>({
    name: "keep-daily",
    env: "PGHA_KEEP_DAILY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent days that have one",
    defaultText: "7",
    parse: parseCount,
  }),
  keepWeekly: option<number>({
    name: "keep-weekly",
    env: "PGHA_KEEP_WEEKLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent ISO weeks that have one",
    defaultText: "7",
    parse: parseCount,
  }),
  keepMonthly: option<number>({
    name: "keep-monthly",
    env: "PGHA_KEEP_MONTHLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent months that have one",
    defaultText: "12",
    parse: parseCount,
  }),
  keepYearly: option<number>({
    name: "keep-yearly",
    env: "PGHA_KEEP_YEARLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent years that have one",
    defaultText: "0",
    parse: parseCount,
  }),
  keepWithin: option<string>({
    name: "keep-within",
    env: "PGHA_KEEP_WITHIN",
    placeholder: "<duration>",
    group: "retention",
    description: "keep everything newer than this (36h, 7d, 2w, 3m, 1y)",
    defaultText: "none",
    parse: parseRetentionSpan,
  }),
  retentionZone: option<string>({
    name: "retention-zone",
    env: "PGHA_RETENTION_ZONE",
    placeholder: "<zone>",
    group: "retention",
    description: "IANA time zone whose calendar defines days, weeks, months and years",
    defaultText: "the system zone",
    parse: parseText,
  }),
  pitrWindow: option<string>({
    name: "pitr-window",
    env: "PGHA_PITR_WINDOW",
    placeholder: "<duration>",
    group: "retention",
    description: "keep the WAL to restore any second this far back (36h, 7d, 2w, 3m, 1y)",
    defaultText: "7d",
    parse: parseRetentionSpan,
  }),
  scheduleGrace: option<number>({
    name: "schedule-grace",
    env: "PGHA_SCHEDULE_GRACE",
    placeholder: "<duration>",
    group: "schedule",
    description: "on SIGTERM, how long running jobs may take to finish before they are stopped",
    defaultText: "5m",
    parse: parseDuration,
  }),
  logLevel: option<LogLevel>({
    name: "log-level",
    env: "PGHA_LOG_LEVEL",
    placeholder: "<error|warn|info|debug>",
    group: "general",
    description: "how much pgha writes to stderr",
    defaultText: "info",
    parse: parseChoice(["error", "warn", "info", "debug"] as const),
  }),
} as const;

export type OptionKey = keyof typeof OPTIONS;

export const OPTION_KEYS = Object.keys(OPTIONS) as OptionKey[];

export function optionsInGroups(groups: readonly OptionGroup[]): OptionKey[] {
  return OPTION_KEYS.filter((key) => groups.includes(OPTIONS[key].group));
}
