/**
 * The setup most integration tests share: a test repository, a PostgreSQL cluster that
 * archives into it with pgha, its libpq environment, and optionally a first backup.
 */
import { expect } from "vitest";
import { PgCluster } from "./pg-cluster.js";
import { runPgha } from "./pgha.js";
import { archiveConf } from "./restore.js";
import type { S3TestServer } from "./s3-server.js";
import { makeTestRepo, type RepoKind, type TestRepo } from "./test-repo.js";

export interface ArchivingSetup {
  repo: TestRepo;
  cluster: PgCluster;
  /** Repository, cluster name and libpq settings for pgha commands. */
  env: Record<string, string>;
  destroy(): Promise<void>;
}

export async function archivingCluster(
  kind: RepoKind,
  server: S3TestServer | null,
  options: { backup?: boolean; conf?: string[]; env?: Record<string, string> } = {},
): Promise<ArchivingSetup> {
  const repo = await makeTestRepo(kind, server);
  let env: Record<string, string> = {
    ...repo.env,
    PGHA_CLUSTER: "main",
    PGHA_ARCHIVE_TIMEOUT: "60s",
    PGHA_LOG_LEVEL: "warn",
    ...options.env,
  };
  const cluster = await PgCluster.init({ env, conf: [...archiveConf(), ...(options.conf ?? [])] });
  await cluster.start();
  env = { ...env, ...cluster.connEnv() };
  if (options.backup) {
    const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
  }
  return {
    repo,
    cluster,
    env,
    destroy: async () => {
      await cluster.destroy();
      await repo.cleanup();
    },
  };
}
