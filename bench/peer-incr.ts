/**
 * The incremental section's peer (backup-incr.ts): pgBackRest full and incremental backups
 * of the same cluster after the same update round, into a local repository, zstd level 3
 * (pgha's default), process-max equal to pgha's job count.
 *
 * Debian's pgBackRest here is 2.45: no block incremental, so its `--type=incr` stores
 * every file that changed since its parent (by size and timestamp) whole. The WAL goes to
 * pgha alone (archive_command is pgha's): pgBackRest backs up with archive-check=n, so
 * unlike pgha it does not wait for the backup's WAL to be archived (pgha's time includes
 * that wait, a few hundred ms). Its stored bytes are those `pgbackrest info` gives as the
 * backup's repository delta.
 *
 * Not installed: the rows are left out with the reason (a benchmark is not a test, and
 * pgBackRest is never a dependency of pgha).
 */
import { execFileSync } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { PgCluster } from "../test/helpers/pg-cluster.js";
import { serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { measured, onCleanup } from "./common.js";
import { pgBackRest, STANZA } from "./pgbackrest.js";

export interface PeerBackupRun {
  type: "full" | "incr";
  wallMs: number;
  cpuMs: number;
  peakRssMb: number;
  /** Bytes this backup added to the repository (compressed). */
  storedBytes: number;
  /** Bytes of the files it copied, uncompressed. */
  copiedBytes: number;
}

export interface PeerIncremental {
  version: string;
  backup(type: "full" | "incr"): Promise<PeerBackupRun>;
}

/** The installed pgbackrest's version line, or why there is none. */
function installedVersion(): { version: string } | { missing: string } {
  try {
    return { version: execFileSync("pgbackrest", ["version"], { encoding: "utf8" }).trim() };
  } catch (error) {
    return { missing: `pgbackrest is not installed (${(error as Error).message.split("\n")[0]})` };
  }
}

/** pgBackRest set up on `cluster` (a stanza in a local repository), or why not. */
export async function setUpPgBackRestIncremental(
  cluster: PgCluster,
  processMax: number,
  scratch: string,
): Promise<PeerIncremental | { skipped: string }> {
  const installed = installedVersion();
  if ("missing" in installed) return { skipped: installed.missing };
  const dir = await serverOwnedTempDir("pgha-bench-pgbr-");
  onCleanup(dir, () => rm(dir, { recursive: true, force: true }));
  const config = join(dir, "pgbackrest.conf");
  const lines = [
    "[global]",
    `repo1-path=${join(dir, "repo")}`,
    "repo1-retention-full=999",
    "compress-type=zst",
    "compress-level=3",
    `process-max=${processMax}`,
    "start-fast=y",
    // The WAL goes to pgha's repository only (see above).
    "archive-check=n",
    "log-level-console=warn",
    "log-level-stderr=warn",
    "log-level-file=off",
    `lock-path=${join(dir, "lock")}`,
    `spool-path=${join(dir, "spool")}`,
    "",
    `[${STANZA}]`,
    `pg1-path=${cluster.dataDir}`,
    `pg1-socket-path=${cluster.socketDir}`,
    `pg1-port=${cluster.port}`,
    "",
  ];
  await writeFile(config, lines.join("\n"), { mode: 0o644 });
  try {
    await pgBackRest(config, ["stanza-create"]);
  } catch (error) {
    return { skipped: `pgbackrest stanza-create failed: ${(error as Error).message}` };
  }
  return {
    version: installed.version,
    backup: async (type) => {
      const run = await measured(
        {
          file: "pgbackrest",
          args: [`--config=${config}`, `--stanza=${STANZA}`, "backup", `--type=${type}`],
        },
        scratch,
      );
      const last = lastBackup(await pgBackRest(config, ["--output=json", "info"]));
      if (last.type !== type)
        throw new Error(`pgbackrest backup --type=${type} took a ${last.type} backup`);
      return {
        type,
        wallMs: run.wallMs,
        cpuMs: run.cpuMs,
        peakRssMb: run.maxRssKb / 1024,
        storedBytes: last.info.repository.delta,
        copiedBytes: last.info.delta,
      };
    },
  };
}

interface InfoBackup {
  type: string;
  info: { delta: number; size: number; repository: { delta: number; size: number } };
}

function lastBackup(json: string): InfoBackup {
  const stanzas = JSON.parse(json) as { backup?: InfoBackup[] }[];
  const last = stanzas[0]?.backup?.at(-1);
  if (!last) throw new Error("pgbackrest info lists no backup");
  return last;
}
