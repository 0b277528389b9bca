/**
 * Recovery configuration for a restored data directory, by server version:
 * PostgreSQL 12+ takes settings in postgresql.auto.conf plus recovery.signal (archive
 * recovery) or standby.signal; 11 and older read recovery.conf (standby_mode = 'on').
 */
import { appendFile, chmod, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Config } from "../config/load.js";

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
export function withBlankTargets(settings: [string, string][]): [string, string][] {
  const chosen = settings.find(([key]) => TARGETS.includes(key))?.[0];
  const blanks = TARGETS.filter((key) => key !== chosen).map((key): [string, string] => [key, ""]);
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
  const args = [node, launcher, "wal-fetch"];
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
  return `${args.map(shellWord).join(" ")} %f %p`;
}

/**
 * Writes recovery settings (restore_command, recovery_target_*, primary_conninfo, ...)
 * where the version reads them, and server settings (archive_mode) into
 * postgresql.auto.conf, which every supported version reads.
 */
export async function writeRecoveryConfig(
  pgdata: string,
  versionNum: number,
  settings: [string, string][],
  server: [string, string][],
  mode: RecoveryMode,
  comment: string,
): Promise<string[]> {
  const render = (list: [string, string][]) =>
    list.map(([key, value]) => `${key} = ${confValue(value)}`);
  // Blank targets are a PostgreSQL 12+ GUC matter; recovery.conf starts empty anyway.
  const lines = render(versionNum >= 120000 ? withBlankTargets(settings) : settings);
  const written: string[] = [];
  const auto = join(pgdata, "postgresql.auto.conf");
  const previous = await readFile(auto, "utf8").catch(() => "");
  await writeFile(
    auto,
    withoutManaged(
      previous,
      server.map(([key]) => key),
    ),
  );
  if (versionNum >= 120000) {
    await appendFile(auto, `\n# ${comment}\n${[...render(server), ...lines].join("\n")}\n`);
    const signal = join(pgdata, mode === "standby" ? "standby.signal" : "recovery.signal");
    await writeFile(signal, "");
    await chmod(signal, 0o600);
    written.push(auto, signal);
  } else {
    if (server.length > 0) {
      await appendFile(auto, `\n# ${comment}\n${render(server).join("\n")}\n`);
      written.push(auto);
    }
    const path = join(pgdata, "recovery.conf");
    const standby = mode === "standby" ? ["standby_mode = 'on'"] : [];
    await writeFile(path, `# ${comment}\n${[...standby, ...lines].join("\n")}\n`, { mode: 0o600 });
    written.push(path);
  }
  return written;
}
