/**
 * Recovery configuration for a restored data directory, by server version:
 * PostgreSQL 12+ takes settings in postgresql.auto.conf plus recovery.signal (archive
 * recovery) or standby.signal; 11 and older read recovery.conf (standby_mode = 'on').
 */
import { appendFile, chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/load.js";

export type RecoveryMode = "recovery" | "standby";

/** A postgresql.conf value: single-quoted, quotes doubled. */
export function confValue(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A shell word, for restore_command (PostgreSQL runs it with sh -c). */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * restore_command for the restored server: this pgha (absolute node and launcher paths,
 * so the server's PATH does not matter) with the repository settings it needs.
 * Credentials are not written: the server's environment, AWS profile, instance role or
 * the config file provide them.
 */
export function restoreCommandLine(config: Config, node: string, launcher: string): string {
  const args = [node, launcher, "wal-fetch"];
  if (config.configFile) args.push("--config", config.configFile);
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
  const lines = render(settings);
  const written: string[] = [];
  const auto = join(pgdata, "postgresql.auto.conf");
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
