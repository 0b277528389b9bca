/** The benchmarks' PostgreSQL cluster helpers: archiving into pgha, waiting for it, sizes. */
import { rm } from "node:fs/promises";
import { PgCluster, serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { pghaCommandLine, runPgha } from "../test/helpers/pgha.js";
import { log, onCleanup } from "./common.js";

export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** archive_command pushing with pgha into the repository that `env` (VAR=value) names. */
export function archiveCommand(env: Record<string, string> = {}): string {
  const prefix = Object.entries(env)
    .map(([key, value]) => `${key}='${value}' `)
    .join("");
  return `${prefix}${pghaCommandLine("wal-push %p")}`;
}

/** Waits until the archiver has nothing left to do (no .ready files). */
export async function archiverIdle(cluster: PgCluster, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    const ready = Number(
      await cluster.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"),
    );
    if (ready === 0) return;
    if (Date.now() > deadline) {
      const stats = await cluster.sql(
        "SELECT failed_count || ' failures, last ' || coalesce(last_failed_wal, '-') FROM pg_stat_archiver",
      );
      throw new Error(`archiver still has ${ready} segments to push (${stats})`);
    }
    if (Date.now() - lastLog > 15_000) {
      log(`waiting for the archiver: ${ready} segments to push`);
      lastLog = Date.now();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Sizes of a backup, from `backup info --json`. */
export async function backupSizes(
  env: Record<string, string>,
  id: string,
): Promise<{ rawBytes: number; storedBytes: number }> {
  const info = await runPgha(["backup", "info", id, "--json"], { env, asServerUser: true });
  if (info.code !== 0)
    throw new Error(`pgha backup info ${id} exited ${info.code}: ${info.stderr}`);
  return JSON.parse(info.stdout) as { rawBytes: number; storedBytes: number };
}

/**
 * A local repository and a scratch directory (both the server user's, removed at the
 * end) and a started PostgreSQL cluster whose archive_command pushes into the repository
 * with pgha, as cluster `name`. `env`: more pgha settings for the cluster and the runs.
 */
export async function archivingCluster(
  name: string,
  options: { env?: Record<string, string>; conf?: string[] } = {},
): Promise<{ scratch: string; repoEnv: Record<string, string>; cluster: PgCluster }> {
  const repo = await serverOwnedTempDir(`pgha-bench-${name}-repo-`);
  onCleanup(repo, () => rm(repo, { recursive: true, force: true }));
  const scratch = await serverOwnedTempDir(`pgha-bench-${name}-`);
  onCleanup(scratch, () => rm(scratch, { recursive: true, force: true }));
  const repoEnv = {
    PGHA_REPO: repo,
    PGHA_CLUSTER: name,
    PGHA_ARCHIVE_TIMEOUT: "300s",
    PGHA_LOG_LEVEL: "warn",
    ...options.env,
  };
  const cluster = await PgCluster.init({
    env: repoEnv,
    conf: [
      "archive_mode = on",
      `archive_command = ${sqlString(archiveCommand())}`,
      ...(options.conf ?? []),
    ],
  });
  onCleanup(`PostgreSQL cluster (${name})`, () => cluster.destroy());
  await cluster.start();
  return { scratch, repoEnv, cluster };
}
