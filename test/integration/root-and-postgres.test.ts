/**
 * Root and the PostgreSQL user share one local repository (the tests run as root;
 * PostgreSQL and its archive_command run as postgres): a backup and a dump run as root on
 * a fresh repository leave it writable for wal-push; a restore as root gives the data
 * directory to the owner of its parent, or refuses a root-owned one before downloading;
 * a drill as root is refused before it writes anything.
 */
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres } from "../helpers/components.js";
import { PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";

const pg = havePostgres();
const user = serverUser();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every path under dir whose owner is not uid. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const wrong: string[] = [];
  if ((await stat(dir)).uid !== uid) wrong.push(dir);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isSymbolicLink()) continue;
    if ((await stat(path)).uid !== uid) wrong.push(path);
  }
  return wrong;
}

describe.skipIf(!pg || !user)("root and postgres share a local repository", () => {
  let setup: ArchivingSetup;
  let repoDir: string;
  const uid = user?.uid ?? -1;
  const copies: PgCluster[] = [];

  beforeAll(async () => {
    // Fresh: nothing archived yet, so root's backup is the first to create directories.
    // A short archive timeout: the old code's backup waited for a wal-push that failed.
    setup = await archivingCluster("local", null, { env: { PGHA_ARCHIVE_TIMEOUT: "20s" } });
    repoDir = setup.repo.dir ?? "";
    expect(await readdir(repoDir)).toEqual([]);
  });

  afterAll(async () => {
    for (const c of copies) await c.destroy().catch(() => undefined);
    await setup?.destroy();
  });

  it("a backup and a dump as root leave the repository to postgres: wal-push keeps working", async () => {
    const { cluster, env } = setup;
    await cluster.sql("CREATE TABLE t AS SELECT 1 AS id");
    const backup = await runPgha(["backup", "--fast"], { env });
    expect(backup.code, backup.stderr).toBe(0);
    const dump = await runPgha(["dump", "--db", "postgres"], { env });
    expect(dump.code, dump.stderr).toBe(0);
    expect(await notOwnedBy(repoDir, uid)).toEqual([]);
    // PostgreSQL's own wal-push, as postgres, after root made the directories.
    await cluster.sql("INSERT INTO t VALUES (2)");
    const name = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let archived = "";
    for (let i = 0; i < 120 && archived < name; i++) {
      await sleep(250);
      archived = await cluster.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
    }
    expect(archived >= name, await cluster.serverLog()).toBe(true);
    expect(await cluster.sql("SELECT failed_count FROM pg_stat_archiver")).toBe("0");
    expect(await notOwnedBy(repoDir, uid)).toEqual([]);
  });

  it("a restore as root gives the data directory to its parent's owner; the copy starts", async () => {
    const parent = await serverOwnedTempDir("pgha-root-restore-");
    const dataDir = join(parent, "data");
    const restored = await runPgha(["restore", "--pgdata", dataDir, "--no-archive"], {
      env: setup.env,
    });
    expect(restored.code, restored.stderr).toBe(0);
    expect(await notOwnedBy(dataDir, uid)).toEqual([]);
    const copy = await PgCluster.adopt(dataDir, { env: setup.env });
    copy.removeAlso.push(parent);
    copies.push(copy);
    await copy.start();
    await copy.waitPromoted();
    expect(await copy.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t")).toBe("1,2");
  });

  it("a restore as root into a root-owned directory, and a drill as root, are refused up front", async () => {
    const parent = await serverOwnedTempDir("pgha-root-refused-");
    const rootOwned = join(parent, "by-root");
    await mkdir(rootOwned);
    const refused = await runPgha(["restore", "--pgdata", join(rootOwned, "data")], {
      env: setup.env,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/belongs to root[\s\S]*HINT: .*PostgreSQL user/);
    expect(await readdir(rootOwned)).toEqual([]);
    await rm(parent, { recursive: true, force: true });

    const before = await readdir(join(repoDir, "v1", "clusters", "main"));
    const drill = await runPgha(["drill"], { env: setup.env });
    expect(drill.code).toBe(2);
    expect(drill.stderr).toMatch(/refuses to run as root/);
    expect(await readdir(join(repoDir, "v1", "clusters", "main"))).toEqual(before);
  });
});
