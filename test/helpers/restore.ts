/** Restoring a backup the way an operator would: fetch, recovery settings, start. */
import { chown, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { PgCluster, serverOwnedTempDir, serverUser } from "./pg-cluster.js";
import { pghaCommandLine, runPgha } from "./pgha.js";

export function archiveConf(): string[] {
  return [
    "archive_mode = on",
    `archive_command = '${pghaCommandLine("wal-push %p").replace(/'/g, "''")}'`,
  ];
}

/** Recovery to the end of the backup with pgha wal-fetch, then promote; no archiving. */
function recoveryConf(): string[] {
  return [
    "archive_mode = off",
    `restore_command = '${pghaCommandLine("wal-fetch %f %p").replace(/'/g, "''")}'`,
    "recovery_target = 'immediate'",
    "recovery_target_action = 'promote'",
  ];
}

export async function restoreAndStart(
  backupId: string,
  env: Record<string, string>,
  extra: string[] = [],
): Promise<PgCluster> {
  const parent = await serverOwnedTempDir("pgha-restore-");
  const dataDir = join(parent, "data");
  const fetched = await runPgha(["backup", "fetch", backupId, dataDir, ...extra], {
    env,
    asServerUser: true,
  });
  expect(fetched.code, fetched.stderr).toBe(0);
  const restored = await PgCluster.adopt(dataDir, { env, conf: recoveryConf() });
  restored.removeAlso.push(parent);
  await writeFile(join(dataDir, "recovery.signal"), "");
  const user = serverUser();
  if (user) await chown(join(dataDir, "recovery.signal"), user.uid, user.gid);
  await restored.start();
  await restored.waitPromoted();
  return restored;
}
