/**
 * THE option table. Every setting pgha reads is declared here once: its flag, its
 * environment variable, its config-file key (the flag name without dashes, unless it
 * says otherwise), its parser,
 * its default and its documentation. The CLI builds its flags from this table, the
 * loader resolves values from it (flags > environment > config file > default), and
 * `pgha options` / the README reference print it. Flags of single commands, which are not
 * settings, are in flags.ts. Loaded by wal-push / wal-fetch: keep it free of heavy imports.
 */
import { availableParallelism } from "node:os";
import {
  DEFAULT_INCR_WHOLE_PERCENT,
  DEFAULT_ZSTD_LEVEL,
  parseAbsolutePath,
  parseBoolean,
  parseChoice,
  parseClusterName,
  parseCompression,
  parseCount,
  parseDuration,
  parseHttpUrl,
  parseJobs,
  parseMaxIncr,
  parsePercent,
  parseRecipients,
  parseRepoLocation,
  parseRetentionSpan,
  parseSize,
  parseText,
} from "./values.js";

export type OptionGroup =
  | "repository"
  | "s3"
  | "pgdata"
  | "postgres"
  | "parallel"
  | "backup"
  | "retention"
  | "window"
  | "schedule"
  | "wal"
  | "walSpeed"
  | "encryption"
  | "general";

/** What a computed default may look at: the environment and the values given explicitly. */
export interface DefaultContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Parsed values from flags, environment and config file, by option key. */
  readonly given: Readonly<Record<string, unknown>>;
}

/**
 * A default is written once. Literal text (`"60s"`) is what help shows AND what the loader
 * runs through `parse`, so the two cannot diverge. A rule that depends on other values is
 * its words plus the function that applies it. Words alone leave the value unset: the code
 * that uses it decides (for example the server's data_directory), as the words say.
 */
export type OptionDefault<T> =
  | string
  | { readonly text: string; readonly compute: (context: DefaultContext) => T }
  | { readonly text: string; readonly compute?: undefined };

export interface OptionSpec<T, D extends OptionDefault<T> = OptionDefault<T>> {
  /** Flag name without dashes; also the config-file key unless `fileKey` is set. */
  readonly name: string;
  /** The config-file key, where the flag name is taken there (the scheduler's "jobs"). */
  readonly fileKey?: string;
  readonly env: string;
  /** Placeholder shown in help, e.g. "<url>". */
  readonly placeholder: string;
  readonly group: OptionGroup;
  readonly description: string;
  readonly default: D;
  readonly parse: (raw: string) => T;
}

function option<T, const D extends OptionDefault<T>>(spec: OptionSpec<T, D>): OptionSpec<T, D> {
  return spec;
}

/** The key of a setting in the config file. */
export function fileKeyOf(spec: OptionSpec<unknown>): string {
  return spec.fileKey ?? spec.name;
}

/** The default as users read it in help and README. */
export function defaultText(spec: OptionSpec<unknown>): string {
  return typeof spec.default === "string" ? spec.default : spec.default.text;
}

/** The embedded default repository: like pgBackRest's /var/lib/pgbackrest. */
export const DEFAULT_REPO = "/var/lib/pgha";
export const DEFAULT_CONFIG_FILE = "/etc/pgha/pgha.json";

export const OPTIONS = {
  repo: option({
    name: "repo",
    env: "PGHA_REPO",
    placeholder: "<path|url>",
    group: "repository",
    description: "repository: an absolute local path, file:///path, or s3://bucket/prefix",
    default: DEFAULT_REPO,
    parse: parseRepoLocation,
  }),
  cluster: option({
    name: "cluster",
    env: "PGHA_CLUSTER",
    placeholder: "<name>",
    group: "repository",
    description: "cluster name inside the repository (one repository holds many clusters)",
    default: "main",
    parse: parseClusterName,
  }),
  compress: option({
    name: "compress",
    env: "PGHA_COMPRESS",
    placeholder: "<zstd[:level]|none>",
    group: "repository",
    description: "compression of stored data: zstd with level 1-19, or none",
    default: `zstd:${DEFAULT_ZSTD_LEVEL}`,
    parse: parseCompression,
  }),
  retryTimeout: option({
    name: "retry-timeout",
    env: "PGHA_RETRY_TIMEOUT",
    placeholder: "<duration>",
    group: "repository",
    description:
      "total time to keep retrying transient storage failures (5xx, throttling, resets, timeouts); no new attempt starts past it, but one attempt in flight ends on its own timeouts (S3: 5 s to connect, 60 s without progress)",
    default: "60s",
    parse: parseDuration,
  }),
  s3Endpoint: option({
    name: "s3-endpoint",
    env: "PGHA_S3_ENDPOINT",
    placeholder: "<url>",
    group: "s3",
    description: "S3-compatible endpoint (MinIO, Ceph, ...); unset means AWS S3",
    default: { text: "AWS S3" },
    parse: parseHttpUrl,
  }),
  s3Region: option({
    name: "s3-region",
    env: "PGHA_S3_REGION",
    placeholder: "<region>",
    group: "s3",
    description: "S3 region",
    default: {
      text: "AWS_REGION, else us-east-1",
      compute: ({ env }) => env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    },
    parse: parseText,
  }),
  s3ForcePathStyle: option({
    name: "s3-force-path-style",
    env: "PGHA_S3_FORCE_PATH_STYLE",
    placeholder: "<bool>",
    group: "s3",
    description: "address buckets as endpoint/bucket instead of bucket.endpoint",
    default: {
      text: "true with --s3-endpoint, else false",
      compute: ({ given }) => given.s3Endpoint !== undefined,
    },
    parse: parseBoolean,
  }),
  s3Checksums: option({
    name: "s3-checksums",
    env: "PGHA_S3_CHECKSUMS",
    placeholder: "<when_supported|when_required>",
    group: "s3",
    description:
      "AWS SDK request/response checksums; many S3-compatible stores need when_required (pgha always sends Content-MD5)",
    default: {
      text: "when_required with --s3-endpoint, else when_supported",
      compute: ({ given }) => (given.s3Endpoint !== undefined ? "when_required" : "when_supported"),
    },
    parse: parseChoice(["when_supported", "when_required"] as const),
  }),
  s3StorageClass: option({
    name: "s3-storage-class",
    env: "PGHA_S3_STORAGE_CLASS",
    placeholder: "<class>",
    group: "s3",
    description: "storage class of new objects (STANDARD, STANDARD_IA, ...)",
    default: { text: "the bucket's default" },
    parse: (raw) => {
      const text = parseText(raw).toUpperCase();
      if (!/^[A-Z_]+$/.test(text)) throw new Error(`'${raw}' is not a storage class name`);
      return text;
    },
  }),
  s3Sse: option({
    name: "s3-sse",
    env: "PGHA_S3_SSE",
    placeholder: "<AES256|aws:kms>",
    group: "s3",
    description: "server-side encryption of new objects",
    default: { text: "none requested" },
    parse: (raw): "AES256" | "aws:kms" =>
      raw.trim() === "AES256" ? "AES256" : parseChoice(["aws:kms"] as const)(raw),
  }),
  s3SseKmsKeyId: option({
    name: "s3-sse-kms-key-id",
    env: "PGHA_S3_SSE_KMS_KEY_ID",
    placeholder: "<key-id>",
    group: "s3",
    description: "KMS key for --s3-sse aws:kms",
    default: { text: "the account's default key" },
    parse: parseText,
  }),
  s3PartSize: option({
    name: "s3-part-size",
    env: "PGHA_S3_PART_SIZE",
    placeholder: "<size>",
    group: "s3",
    description: "multipart part size, 5MiB-1GiB; bodies up to one part are sent in a single PUT",
    default: "16MiB",
    parse: (raw) => {
      const size = parseSize(raw);
      // One part is held in memory; Node's Buffer limit and sanity cap it at 1 GiB.
      if (size < 5 * 1024 * 1024 || size > 1024 ** 3) {
        throw new Error(`'${raw}' is outside 5MiB-1GiB`);
      }
      return size;
    },
  }),
  s3CaFile: option({
    name: "s3-ca-file",
    env: "PGHA_S3_CA_FILE",
    placeholder: "<file>",
    group: "s3",
    description:
      "PEM file of CA certificates trusted for the S3 endpoint in addition to the bundled roots (a private CA of MinIO or Ceph); read only when a TLS connection opens",
    default: { text: "the bundled roots only" },
    parse: parseText,
  }),
  // Encryption (README "Encryption"): no command takes these as flags (the "encryption"
  // group is in no command's groups), only the config file and the environment.
  encryptionRecipients: option({
    name: "encryption-recipients",
    env: "PGHA_ENCRYPTION_RECIPIENTS",
    placeholder: "<age1...,...>",
    group: "encryption",
    description:
      "encrypt every object pgha writes (age format) to these X25519 public keys, separated by commas or spaces; writing needs no secret",
    default: { text: "the public keys of encryption-identity-file's identities, else none" },
    parse: parseRecipients,
  }),
  encryptionIdentityFile: option({
    name: "encryption-identity-file",
    env: "PGHA_ENCRYPTION_IDENTITY_FILE",
    placeholder: "<path>",
    group: "encryption",
    description:
      "age identity file (AGE-SECRET-KEY-1... lines, 'pgha key generate' writes one) that reads an encrypted repository; refused when group or others may read it",
    default: { text: "none" },
    parse: parseAbsolutePath,
  }),
  encryptionPassphraseFile: option({
    name: "encryption-passphrase-file",
    env: "PGHA_ENCRYPTION_PASSPHRASE_FILE",
    placeholder: "<path>",
    group: "encryption",
    description:
      "passphrase mode: a file whose first line is the passphrase that unlocks the repository's own key (PGHA_ENCRYPTION_PASSPHRASE gives it directly); refused when group or others may read it",
    default: { text: "none" },
    parse: parseAbsolutePath,
  }),
  pgdata: option({
    name: "pgdata",
    env: "PGHA_PGDATA",
    placeholder: "<dir>",
    group: "pgdata",
    description:
      "data directory: what backup reads (default: the server's data_directory), where wal-fetch looks for standby.signal (default: the working directory, as PostgreSQL runs it); check: the server running there, when neither --pg-conn nor PGHOST names one",
    default: { text: "see description" },
    parse: parseText,
  }),
  pgConn: option({
    name: "pg-conn",
    env: "PGHA_PG_CONN",
    placeholder: "<conninfo>",
    group: "postgres",
    description:
      "the server's connection string: a URI (postgresql://user@host:5432/db?sslmode=require) or libpq keyword=value pairs (host=/var/run/postgresql port=5432 dbname=app); the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD apply too; a connection attempt gives up after connect_timeout (the string's, else PGCONNECT_TIMEOUT; 0: never), else 30 s",
    default: { text: "libpq environment" },
    parse: parseText,
  }),
  pgBin: option({
    name: "pg-bin",
    env: "PGHA_PG_BIN",
    placeholder: "<dir>",
    group: "postgres",
    description:
      "directory of the PostgreSQL client programs (pg_dump, pg_dumpall, pg_restore, psql); they must be at least the server's version",
    default: { text: "/usr/lib/postgresql/<server major>/bin if present, else PATH" },
    parse: parseText,
  }),
  archiveTimeout: option({
    name: "archive-timeout",
    env: "PGHA_ARCHIVE_TIMEOUT",
    placeholder: "<duration>",
    group: "wal",
    description:
      "how long a backup waits for the WAL it needs to reach the repository, and an asynchronous wal-push for its file to be stored",
    default: "2m",
    parse: parseDuration,
  }),
  archiveAsync: option({
    name: "archive-async",
    env: "PGHA_ARCHIVE_ASYNC",
    placeholder: "<bool>",
    group: "walSpeed",
    description:
      "wal-push hands files to one background archiver per data directory, which stores several .ready files at once; wal-push still exits 0 only once its file is stored and verified",
    default: "false",
    parse: parseBoolean,
  }),
  archiveBacklogWarn: option({
    name: "archive-backlog-warn",
    env: "PGHA_ARCHIVE_BACKLOG_WARN",
    placeholder: "<size>",
    group: "walSpeed",
    description:
      "with --archive-async: warn (log, wal-push, status) when the WAL waiting to be archived passes this size; nothing is ever dropped",
    default: "1GiB",
    parse: parseSize,
  }),
  prefetch: option({
    name: "prefetch",
    env: "PGHA_PREFETCH",
    placeholder: "<n>",
    group: "walSpeed",
    description:
      "wal-fetch keeps up to n segments ahead of recovery downloaded and verified in pg_wal/.pgha/prefetch (a background process); 0 turns it off",
    default: "8",
    parse: parseCount,
  }),
  jobs: option({
    name: "jobs",
    // "jobs" in the config file is the scheduler's list.
    fileKey: "parallel",
    env: "PGHA_JOBS",
    placeholder: "<n>",
    group: "parallel",
    description:
      "backup: how many bundles of files are read, compressed and stored at once; restore (backup fetch, restore, standby, drill): how many are downloaded, decompressed and written at once. Each job is a thread; peak memory grows with it (Base backups: memory)",
    // Capped: past a few streams a backup is bound by disk or network and only takes CPU
    // and memory (each job holds its buffers, on S3 up to two parts) from the server.
    default: {
      text: "the number of CPU cores, at most 4",
      compute: () => Math.min(4, availableParallelism()),
    },
    parse: parseJobs,
  }),
  backupMaxIncr: option({
    name: "backup-max-incr",
    env: "PGHA_BACKUP_MAX_INCR",
    placeholder: "<n>",
    group: "backup",
    description:
      "backup --type incr: how many incremental backups may follow a full; the next one is taken as a full (at most 254)",
    default: "6",
    parse: parseMaxIncr,
  }),
  backupIncrWhole: option({
    name: "backup-incr-whole",
    env: "PGHA_BACKUP_INCR_WHOLE",
    placeholder: "<percent>",
    group: "backup",
    description:
      "backup --type incr or diff: a relation file of which at least this percentage of the 8 KiB blocks changed since the parent (blocks past its size count as changed; for a large file a sample of 256 blocks may decide, and be a little off) is stored whole, not as its changed blocks: restores of this backup, and of later ones until the file changes again, stream it from this one copy instead of the chain's, for about 100/percent times the delta's bytes (1 to 100; 100: only a file all of whose blocks changed, never sampled; PostgreSQL 17 stores a file whole when more than 90% changed)",
    default: String(DEFAULT_INCR_WHOLE_PERCENT),
    parse: parsePercent,
  }),
  keepLast: option({
    name: "keep-last",
    env: "PGHA_KEEP_LAST",
    placeholder: "<n>",
    group: "retention",
    description: "keep the n newest backups (and, separately, dump sets)",
    default: "0",
    parse: parseCount,
  }),
  keepHourly: option({
    name: "keep-hourly",
    env: "PGHA_KEEP_HOURLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent hours that have one",
    default: "0",
    parse: parseCount,
  }),
  keepDaily: option({
    name: "keep-daily",
    env: "PGHA_KEEP_DAILY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent days that have one",
    default: "7",
    parse: parseCount,
  }),
  keepWeekly: option({
    name: "keep-weekly",
    env: "PGHA_KEEP_WEEKLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent ISO weeks that have one",
    default: "7",
    parse: parseCount,
  }),
  keepMonthly: option({
    name: "keep-monthly",
    env: "PGHA_KEEP_MONTHLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent months that have one",
    default: "12",
    parse: parseCount,
  }),
  keepYearly: option({
    name: "keep-yearly",
    env: "PGHA_KEEP_YEARLY",
    placeholder: "<n>",
    group: "retention",
    description: "keep the newest of each of the n most recent years that have one",
    default: "0",
    parse: parseCount,
  }),
  keepWithin: option({
    name: "keep-within",
    env: "PGHA_KEEP_WITHIN",
    placeholder: "<duration>",
    group: "retention",
    description:
      "keep everything newer than this (90min, 36h, 7d, 2w, 3mo, 1y; not m: write min or mo)",
    default: { text: "none" },
    parse: parseRetentionSpan,
  }),
  retentionZone: option({
    name: "retention-zone",
    env: "PGHA_RETENTION_ZONE",
    placeholder: "<zone>",
    group: "window",
    description: "IANA time zone whose calendar defines days, weeks, months and years",
    default: { text: "the system zone" },
    parse: parseText,
  }),
  pitrWindow: option({
    name: "pitr-window",
    env: "PGHA_PITR_WINDOW",
    placeholder: "<duration>",
    group: "window",
    description:
      "keep the WAL to restore any second this far back (90min, 36h, 7d, 2w, 3mo, 1y; not m: write min or mo)",
    default: "7d",
    parse: parseRetentionSpan,
  }),
  scheduleGrace: option({
    name: "schedule-grace",
    env: "PGHA_SCHEDULE_GRACE",
    placeholder: "<duration>",
    group: "schedule",
    description: "on SIGTERM, how long running jobs may take to finish before they are stopped",
    default: "5m",
    parse: parseDuration,
  }),
  logLevel: option({
    name: "log-level",
    env: "PGHA_LOG_LEVEL",
    placeholder: "<error|warn|info|debug>",
    group: "general",
    description: "how much pgha writes to stderr",
    default: "info",
    parse: parseChoice(["error", "warn", "info", "debug"] as const),
  }),
  logFormat: option({
    name: "log-format",
    env: "PGHA_LOG_FORMAT",
    placeholder: "<text|json>",
    group: "general",
    description:
      "log lines as text (time, level, source: message) or one JSON object a line (time, level, source, message, hint)",
    default: "text",
    parse: parseChoice(["text", "json"] as const),
  }),
  logFile: option({
    name: "log-file",
    env: "PGHA_LOG_FILE",
    placeholder: "<path>",
    group: "general",
    description:
      "also append every log line to this file (an absolute path); created mode 0660, owned like its directory when root creates it",
    default: { text: "none: stderr only" },
    parse: parseAbsolutePath,
  }),
  onFailure: option({
    name: "on-failure",
    env: "PGHA_ON_FAILURE",
    placeholder: "<command>",
    group: "schedule",
    description:
      "schedule run: a /bin/sh command run when a job fails, with PGHA_JOB, PGHA_EXIT_CODE, PGHA_MESSAGE (the job's last error line) and PGHA_JOB_DURATION (seconds) set; a job's onFailure replaces it",
    default: { text: "none" },
    parse: parseText,
  }),
} as const;

export type OptionKey = keyof typeof OPTIONS;

/** The value of a setting once resolved: unset only where its default is words alone. */
export type SettingValue<S> =
  S extends OptionSpec<infer T, infer D>
    ? D extends string | { compute: unknown }
      ? T
      : T | undefined
    : never;

export type SettingValues = { -readonly [K in OptionKey]: SettingValue<(typeof OPTIONS)[K]> };

/** Setting flags as given on the command line, unparsed (the loader parses them), and --config. */
export type SettingFlags = Partial<Record<OptionKey | "config", string>>;

export const OPTION_KEYS = Object.keys(OPTIONS) as OptionKey[];

export function optionsInGroups(groups: readonly OptionGroup[]): OptionKey[] {
  return OPTION_KEYS.filter((key) => groups.includes(OPTIONS[key].group));
}
