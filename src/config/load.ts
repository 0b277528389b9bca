/**
 * Configuration loading: read -> parse -> normalize -> validate.
 *
 * Precedence, per option: command-line flag > environment (PGHA_*) > config file > default.
 * The config file is JSON whose keys are the option names (`{"repo": "s3://b/p"}`); it is
 * `--config FILE`, else `PGHA_CONFIG`, else /etc/pgha/pgha.json when that file exists.
 */
import { readFileSync } from "node:fs";
import type { Compression } from "../compress/compression.js";
import { describeSystemError, UsageError } from "../errors.js";
import type { S3Settings } from "../storage/s3-settings.js";
import {
  DEFAULT_CONFIG_FILE,
  defaultText,
  fileKeyOf,
  OPTION_KEYS,
  OPTIONS,
  type OptionKey,
  type OptionSpec,
  type SettingValues,
} from "./options.js";
import { type LogFormat, type LogLevel, type RepoLocation, ValueError } from "./values.js";

export interface RetentionSettings {
  last: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
  within: string | undefined;
  zone: string | undefined;
  pitrWindow: string;
}

export interface Config {
  repo: RepoLocation;
  cluster: string;
  compress: Compression;
  retryTimeoutMs: number;
  s3: S3Settings;
  pgdata: string | undefined;
  pgConn: string | undefined;
  pgBin: string | undefined;
  archiveTimeoutMs: number;
  archiveAsync: boolean;
  archiveBacklogWarnBytes: number;
  /** Segments wal-fetch keeps downloaded ahead of recovery; 0: no prefetching. */
  prefetch: number;
  /** --jobs: bundles a backup or restore works on at once. */
  parallel: number;
  /** --backup-max-incr: increments after a full before a backup is a full again. */
  backupMaxIncr: number;
  /** --backup-incr-whole: percent of changed blocks from which a file is stored whole. */
  backupIncrWhole: number;
  retention: RetentionSettings;
  scheduleGraceMs: number;
  /** The config file's "jobs" list, unparsed (the scheduler validates it). */
  jobs: unknown;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** --log-file: where log lines are appended besides stderr. */
  logFile: string | undefined;
  /** --on-failure: the scheduler's notification command for a failed job. */
  onFailure: string | undefined;
  /** Encryption (storage/encryption-keys.ts); all unset: the repository is not encrypted. */
  encryption: EncryptionSettings;
  /** The config file that was read, if any. */
  configFile: string | undefined;
  /** Its text, as read (bin/pgha's fast path compares it: spool.ts callId). */
  configText: string | undefined;
}

export interface EncryptionSettings {
  /** Public keys new objects are encrypted to (age1...). */
  recipients: string[] | undefined;
  identityFile: string | undefined;
  passphraseFile: string | undefined;
  /**
   * PGHA_ENCRYPTION_PASSPHRASE. Not in the option table on purpose: every setting there
   * is part of the archiver's call id, which is written to pg_wal/.pgha (spool.ts).
   */
  passphrase: string | undefined;
}

/** keys: recipients and an identity file; passphrase: the repository's own key; undefined: none. */
export function encryptionModeOf(settings: EncryptionSettings): "keys" | "passphrase" | undefined {
  if (settings.passphrase !== undefined || settings.passphraseFile !== undefined)
    return "passphrase";
  if (settings.recipients !== undefined || settings.identityFile !== undefined) return "keys";
  return undefined;
}

export interface ConfigSources {
  /** Flag values by option key, as given on the command line (absent when not given). */
  flags: Partial<Record<OptionKey, string>>;
  env: Record<string, string | undefined>;
  /** Parsed config file content and its path, or undefined when there is none. */
  file: { path: string; values: Record<string, unknown>; text?: string } | undefined;
  /**
   * Settings the command does not use: an invalid value of one is a warning (in
   * `warnings`) and its default stands, not a usage error. archive_command and
   * restore_command must not stop over a typo in a backup setting.
   */
  lenient?: ReadonlySet<OptionKey> | undefined;
  warnings?: string[] | undefined;
}

/** Pure: resolves every option from its sources. Throws UsageError naming option and source. */
export function resolveConfig(sources: ConfigSources): Config {
  const settings = resolveSettings(sources);
  const passphrase = sources.env.PGHA_ENCRYPTION_PASSPHRASE || undefined;
  const encryption: EncryptionSettings = {
    recipients: settings.encryptionRecipients,
    identityFile: settings.encryptionIdentityFile,
    passphraseFile: settings.encryptionPassphraseFile,
    passphrase,
  };
  if (
    (encryption.passphrase !== undefined || encryption.passphraseFile !== undefined) &&
    (encryption.recipients !== undefined || encryption.identityFile !== undefined)
  ) {
    throw new UsageError(
      "encryption: a passphrase and recipients or an identity file are set together",
      "choose one mode: recipients (PGHA_ENCRYPTION_RECIPIENTS) with an identity file for reading, or a passphrase (PGHA_ENCRYPTION_PASSPHRASE / _FILE) for a small setup",
    );
  }
  return {
    ...toConfig(settings),
    encryption,
    configFile: sources.file?.path,
    configText: sources.file?.text,
    jobs: sources.file?.values.jobs,
  };
}

/** Pure: every setting by option key, from its first source or else its default. */
export function resolveSettings(sources: ConfigSources): SettingValues {
  const given: Record<string, unknown> = {};
  if (sources.file) checkFileKeys(sources.file.path, sources.file.values);
  for (const key of OPTION_KEYS) {
    const spec: OptionSpec<unknown> = OPTIONS[key];
    const fromFlag = sources.flags[key];
    const fromEnv = sources.env[spec.env];
    const fromFile = sources.file?.values[fileKeyOf(spec)];
    let raw: string | undefined;
    let origin: string;
    if (fromFlag !== undefined) {
      raw = fromFlag;
      origin = `--${spec.name}`;
    } else if (fromEnv !== undefined && fromEnv !== "") {
      raw = fromEnv;
      origin = `${spec.env}`;
    } else if (fromFile !== undefined && fromFile !== null) {
      if (typeof fromFile === "object") {
        if (sources.lenient?.has(key)) {
          sources.warnings?.push(
            `config file ${sources.file?.path}: '${fileKeyOf(spec)}' must be a string, number or boolean, a setting this command does not use; ignored`,
          );
          continue;
        }
        throw new UsageError(
          `config file ${sources.file?.path}: '${fileKeyOf(spec)}' must be a string, number or boolean`,
          `for example "${fileKeyOf(spec)}": "${defaultText(spec)}"`,
        );
      }
      raw = String(fromFile);
      origin = `'${fileKeyOf(spec)}' in ${sources.file?.path}`;
    } else {
      continue;
    }
    try {
      given[key] = spec.parse(raw);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (sources.lenient?.has(key)) {
        sources.warnings?.push(
          `invalid value for --${spec.name} (from ${origin}), a setting this command does not use: ${why}; ignored`,
        );
        continue;
      }
      throw new UsageError(
        `invalid value for --${spec.name} (from ${origin}): ${why}`,
        (error instanceof ValueError ? error.hint : undefined) ??
          // A short line: some descriptions are a paragraph, which --help shows in full.
          `expected ${spec.placeholder}${typeof spec.default === "string" ? ` (default ${spec.default})` : ""}; --help describes --${spec.name}`,
      );
    }
  }
  const values: Record<string, unknown> = { ...given };
  for (const key of OPTION_KEYS) {
    if (key in given) continue;
    const spec: OptionSpec<unknown> = OPTIONS[key];
    if (typeof spec.default === "string") values[key] = spec.parse(spec.default);
    else if (spec.default.compute) values[key] = spec.default.compute({ env: sources.env, given });
  }
  const resolved = values as SettingValues;
  if (resolved.s3SseKmsKeyId !== undefined && resolved.s3Sse !== "aws:kms") {
    throw new UsageError(
      "--s3-sse-kms-key-id is set but --s3-sse is not aws:kms",
      "set --s3-sse aws:kms (PGHA_S3_SSE) or drop the key id",
    );
  }
  return resolved;
}

/** The settings in the shape the rest of pgha uses. */
function toConfig(
  v: SettingValues,
): Omit<Config, "jobs" | "configFile" | "configText" | "encryption"> {
  return {
    repo: v.repo,
    cluster: v.cluster,
    compress: v.compress,
    retryTimeoutMs: v.retryTimeout,
    s3: {
      endpoint: v.s3Endpoint,
      region: v.s3Region,
      forcePathStyle: v.s3ForcePathStyle,
      checksums: v.s3Checksums,
      storageClass: v.s3StorageClass,
      sse: v.s3Sse,
      sseKmsKeyId: v.s3SseKmsKeyId,
      partSize: v.s3PartSize,
      caFile: v.s3CaFile,
    },
    scheduleGraceMs: v.scheduleGrace,
    pgdata: v.pgdata,
    pgConn: v.pgConn,
    pgBin: v.pgBin,
    archiveTimeoutMs: v.archiveTimeout,
    archiveAsync: v.archiveAsync,
    archiveBacklogWarnBytes: v.archiveBacklogWarn,
    prefetch: v.prefetch,
    parallel: v.jobs,
    backupMaxIncr: v.backupMaxIncr,
    backupIncrWhole: v.backupIncrWhole,
    retention: {
      last: v.keepLast,
      hourly: v.keepHourly,
      daily: v.keepDaily,
      weekly: v.keepWeekly,
      monthly: v.keepMonthly,
      yearly: v.keepYearly,
      within: v.keepWithin,
      zone: v.retentionZone,
      pitrWindow: v.pitrWindow,
    },
    logLevel: v.logLevel,
    logFormat: v.logFormat,
    logFile: v.logFile,
    onFailure: v.onFailure,
  };
}

function checkFileKeys(path: string, values: Record<string, unknown>): void {
  // "jobs" is the scheduler's list (src/schedule/jobs.ts), the one structured key.
  const known = new Set([...OPTION_KEYS.map((key) => fileKeyOf(OPTIONS[key])), "jobs"]);
  for (const name of Object.keys(values)) {
    if (!known.has(name)) {
      throw new UsageError(
        `config file ${path}: unknown key '${name}'`,
        `known keys: ${[...known].join(", ")}`,
      );
    }
  }
}

/** Reads the config file that applies, if any (see the module comment for the order). */
export function readConfigFile(
  flagPath: string | undefined,
  env: Record<string, string | undefined>,
  exists: (path: string) => boolean,
): ConfigSources["file"] {
  const explicit = flagPath ?? (env.PGHA_CONFIG || undefined);
  const path = explicit ?? (exists(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read config file ${path}: ${describeSystemError(error)}`,
      explicit === undefined
        ? `fix or remove ${DEFAULT_CONFIG_FILE}`
        : "check --config / PGHA_CONFIG; the file must be readable by the user running pgha (archive_command runs as postgres)",
    );
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `config file ${path} is not valid JSON: ${(error as Error).message}`,
      'write an object of option names, e.g. {"repo": "s3://bucket/prefix", "cluster": "main"}',
    );
  }
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    throw new UsageError(
      `config file ${path} must hold a JSON object`,
      '{"repo": "/var/lib/pgha"}',
    );
  }
  return { path, values: values as Record<string, unknown>, text };
}
