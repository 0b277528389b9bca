/**
 * Recovery configuration for a restored data directory, by server version: pure
 * rendering (write-recovery-config.ts writes it).
 * PostgreSQL 12+ takes settings in postgresql.auto.conf plus recovery.signal (archive
 * recovery) or standby.signal; 11 and older read recovery.conf (standby_mode = 'on').
 */
import { resolve } from "node:path";
import type { Config } from "../config/load.js";
import type { Setting } from "./recovery-settings.js";

export type RecoveryMode = "recovery" | "standby";

/** A postgresql.conf value: single-quoted; backslashes and quotes escaped (as ALTER SYSTEM does). */
export function confValue(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** Settings a restore or standby owns: earlier values of these are removed first. */
const MANAGED = new Set([
  "restore_command",
  "recovery_end_command",
  "archive_cleanup_command",
  "recovery_target",
  "recovery_target_lsn",
  "recovery_target_name",
  "recovery_target_time",
  "recovery_target_xid",
  "recovery_target_inclusive",
  "recovery_target_timeline",
  "recovery_target_action",
  "primary_conninfo",
  "primary_slot_name",
  "recovery_min_apply_delay",
]);
const TARGETS = [
  "recovery_target",
  "recovery_target_lsn",
  "recovery_target_name",
  "recovery_target_time",
  "recovery_target_xid",
];

/**
 * The lines of postgresql.auto.conf without the managed settings (and without the
 * server settings about to be written): a backup of a cluster that was itself restored
 * carries the old restore's recovery_target_* and would stop there again.
 */
export function withoutManaged(text: string, alsoDrop: readonly string[]): string {
  const drop = new Set([...MANAGED, ...alsoDrop]);
  return text
    .split("\n")
    .filter((line) => !drop.has(/^\s*([A-Za-z_]+)\s*=/.exec(line)?.[1]?.toLowerCase() ?? ""))
    .join("\n");
}

/**
 * Blanks for every recovery target not chosen, placed before the chosen one: a target
 * left in postgresql.conf is cancelled without "multiple recovery targets specified".
 */
export function withBlankTargets(settings: Setting[]): Setting[] {
  const chosen = settings.find(([key]) => TARGETS.includes(key))?.[0];
  const blanks = TARGETS.filter((key) => key !== chosen).map((key): Setting => [key, ""]);
  return [...blanks, ...settings];
}

/** A shell word, for restore_command (PostgreSQL runs it with sh -c). */
export function shellWord(value: string): string {
  // PostgreSQL replaces %f, %p, %r anywhere in the command (and PG 16 refuses other %x):
  // a literal % in an argument must be %%.
  const text = value.replace(/%/g, "%%");
  return /^[A-Za-z0-9_./:=@+-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

/**
 * restore_command for the restored server: this pgha (absolute node and launcher paths,
 * so the server's PATH does not matter) with the repository settings it needs.
 * Credentials are not written: the server's environment, AWS profile, instance role or
 * the config file provide them.
 */
export function restoreCommandLine(config: Config, node: string, launcher: string): string {
  // The shell launcher (bin/pgha) answers prefetched segments without Node.js; it runs the
  // node PGHA_NODE names. A Node.js entry (bin/pgha.mjs) is run by that node directly.
  const start = /\.m?js$/.test(launcher)
    ? `${shellWord(node)} ${shellWord(launcher)}`
    : `PGHA_NODE=${shellWord(node)} ${shellWord(launcher)}`;
  const args = ["wal-fetch"];
  // restore_command runs in the data directory: a relative path would point elsewhere.
  if (config.configFile) args.push("--config", resolve(config.configFile));
  args.push(
    "--repo",
    config.repo.kind === "fs" ? config.repo.path : config.repo.url,
    "--cluster",
    config.cluster,
  );
  if (config.repo.kind === "s3") {
    if (config.s3.endpoint) args.push("--s3-endpoint", config.s3.endpoint);
    args.push("--s3-region", config.s3.region);
    args.push("--s3-force-path-style", String(config.s3.forcePathStyle));
    args.push("--s3-checksums", config.s3.checksums);
  }
  // Reading an encrypted repository needs the identity (or passphrase file): its path goes
  // along, never a secret (a passphrase given only in the environment must be in the
  // server's environment too).
  const secrets = [
    ["PGHA_ENCRYPTION_IDENTITY_FILE", config.encryption?.identityFile],
    ["PGHA_ENCRYPTION_PASSPHRASE_FILE", config.encryption?.passphraseFile],
  ]
    .filter((pair): pair is [string, string] => pair[1] !== undefined)
    .map(([name, path]) => `${name}=${shellWord(path)} `)
    .join("");
  return `${secrets}${start} ${args.map(shellWord).join(" ")} %f %p`;
}

export interface RecoverySpec {
  /** server_version_num of the restored cluster: decides where settings go. */
  versionNum: number;
  mode: RecoveryMode;
  /** Recovery settings (restore_command, recovery_target_*, primary_conninfo, ...). */
  settings: Setting[];
  /** Server settings (archive_mode, port, ...): postgresql.auto.conf, which every version reads. */
  server: Setting[];
  /** A comment line saying who wrote the settings and when. */
  comment: string;
}

export interface RecoveryFile {
  /** Relative to the data directory. */
  name: string;
  content: string;
  /** Permission bits to set, for files PostgreSQL wants private. */
  mode?: number;
}

/**
 * The files to write into the data directory, given the current postgresql.auto.conf
 * (empty when there is none): postgresql.auto.conf without earlier managed settings plus
 * the new ones, and the signal file or recovery.conf.
 */
export function renderRecoveryConfig(spec: RecoverySpec, previousAutoConf: string): RecoveryFile[] {
  const render = (list: Setting[]) => list.map(([key, value]) => `${key} = ${confValue(value)}`);
  const modern = spec.versionNum >= 120000;
  // Blank targets are a PostgreSQL 12+ GUC matter; recovery.conf starts empty anyway.
  const lines = render(modern ? withBlankTargets(spec.settings) : spec.settings);
  const kept = withoutManaged(
    previousAutoConf,
    spec.server.map(([key]) => key),
  );
  if (modern) {
    return [
      {
        name: "postgresql.auto.conf",
        content: `${kept}\n# ${spec.comment}\n${[...render(spec.server), ...lines].join("\n")}\n`,
      },
      {
        name: spec.mode === "standby" ? "standby.signal" : "recovery.signal",
        content: "",
        mode: 0o600,
      },
    ];
  }
  const standby = spec.mode === "standby" ? ["standby_mode = 'on'"] : [];
  return [
    {
      name: "postgresql.auto.conf",
      content:
        spec.server.length > 0
          ? `${kept}\n# ${spec.comment}\n${render(spec.server).join("\n")}\n`
          : kept,
    },
    {
      name: "recovery.conf",
      content: `# ${spec.comment}\n${[...standby, ...lines].join("\n")}\n`,
      mode: 0o600,
    },
  ];
}
