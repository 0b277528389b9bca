/**
 * Base backups end to end on a real PostgreSQL 15 (made with --data-checksums), into the
 * local repository and into the S3 test server: a backup taken while pgbench writes is
 * fetched into a new directory and recovered with restore_command = pgha wal-fetch; the
 * rows committed before the backup are there and pg_checksums passes after a clean stop.
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { takeBaseBackup } from "../../src/backup/take-backup.js";
import { resolveConfig } from "../../src/config/load.js";
import { StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { PgServer } from "../../src/pg/server.js";
import { backupsPrefix, lockKey } from "../../src/repository/keys.js";
import { acquireLock } from "../../src/repository/lock.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PgCluster, runCommand, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { archiveConf, restoreAndStart } from "../helpers/restore.js";
import { makeTestRepo, repoKinds, type TestRepo } from "../helpers/test-repo.js";
import { treeDigest } from "../helpers/tree-digest.js";

/** A local repository owned by the server user, and the environment that points pgha at it. */
async function localRepoEnv() {
  const repo = await serverOwnedTempDir("pgha-repo-");
  const env = {
    PGHA_REPO: repo,
    PGHA_CLUSTER: "main",
    PGHA_ARCHIVE_TIMEOUT: "60s",
    PGHA_LOG_LEVEL: "warn",
  };
  return { repo, env };
}

const server = s3Server();
const pg = havePostgres();

describe.skipIf(!pg).each(repoKinds(server))("base backups with a %s repository", (kind) => {
  let cluster: PgCluster;
  let env: Record<string, string>;
  let repo: TestRepo;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    repo = await makeTestRepo(kind, server);
    env = {
      ...repo.env,
      PGHA_CLUSTER: "main",
      PGHA_ARCHIVE_TIMEOUT: "60s",
      PGHA_LOG_LEVEL: "warn",
    };
    cluster = await PgCluster.init({ env, conf: [...archiveConf(), "checkpoint_timeout = '30s'"] });
    await cluster.start();
    env = { ...env, ...cluster.connEnv() };
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await cluster?.destroy();
    await repo?.cleanup();
  });

  it("backs up under pgbench load; the fetched copy recovers with wal-fetch and passes pg_checksums", async () => {
    await cluster.pgbench(["-i", "-s", "5", "-q"]);
    await cluster.sql(
      "CREATE TABLE before_backup AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g",
    );
    const expected = await cluster.sql(
      "SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM before_backup",
    );
    const load = cluster.pgbench(["-T", "12", "-c", "2"]);
    // Three jobs on two cores: more bundles in flight than threads can run.
    const taken = await runPgha(["backup", "--fast", "--label", "under load", "--jobs", "3"], {
      env,
      asServerUser: true,
    });
    await load;
    expect(taken.code, taken.stderr).toBe(0);
    const id = taken.stdout.trim();
    expect(id).toMatch(/^\d{8}T\d{6}Z$/);

    const listed = await runPgha(["backup", "list", "--json"], { env, asServerUser: true });
    expect(listed.code, listed.stderr).toBe(0);
    const backups = JSON.parse(listed.stdout) as { id: string; label: string; files: number }[];
    expect(backups.map((b) => b.id)).toContain(id);
    expect(backups.find((b) => b.id === id)?.label).toBe("under load");
    const info = await runPgha(["backup", "info", "latest"], { env, asServerUser: true });
    expect(info.stdout).toContain(id);

    const restored = await restoreAndStart(id, env);
    cleanups.push(() => restored.destroy());
    expect(
      await restored.sql(
        "SELECT count(*) || ':' || md5(string_agg(v, ',' ORDER BY id)) FROM before_backup",
      ),
    ).toBe(expected);
    expect(Number(await restored.sql("SELECT count(*) FROM pgbench_accounts"))).toBe(500_000);
    await restored.stop("fast");
    const checked = await restored.bin("pg_checksums", ["--check", "-D", restored.dataDir]);
    expect(checked.stdout).toMatch(/Bad checksums:\s+0/);
  });

  it("fetches a backup of several bundles to the same bytes with --jobs 1 and --jobs 3", async () => {
    const info = JSON.parse(
      (await runPgha(["backup", "info", "latest", "--json"], { env, asServerUser: true })).stdout,
    ) as { objects: { part: string; key: string }[] };
    // pgbench at scale 5 is more than one bundle, and pg_control has one of its own.
    expect(info.objects.filter((o) => o.part === "base").length).toBeGreaterThanOrEqual(3);
    const trees: Record<string, string>[] = [];
    for (const jobs of ["1", "3"]) {
      const dir = await serverOwnedTempDir("pgha-jobs-");
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const fetched = await runPgha(
        ["backup", "fetch", "latest", join(dir, "data"), "--jobs", jobs],
        { env, asServerUser: true },
      );
      expect(fetched.code, fetched.stderr).toBe(0);
      trees.push(await treeDigest(join(dir, "data")));
    }
    expect(Object.keys(trees[0] ?? {}).length).toBeGreaterThan(900);
    expect(trees[1]).toEqual(trees[0]);
  });

  it("round-trips a tablespace, remapped to a new directory", async () => {
    const location = await serverOwnedTempDir("pgha-ts-");
    cleanups.push(() => rm(location, { recursive: true, force: true }));
    await cluster.sql(`CREATE TABLESPACE extra LOCATION '${location}'`);
    await cluster.sql(
      "CREATE TABLE in_ts TABLESPACE extra AS SELECT g AS id FROM generate_series(1, 5000) g",
    );
    const taken = await runPgha(["backup", "--fast", "--pin"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
    const info = JSON.parse(
      (
        await runPgha(["backup", "info", taken.stdout.trim(), "--json"], {
          env,
          asServerUser: true,
        })
      ).stdout,
    );
    expect(info).toMatchObject({ pinned: true, tablespaces: [{ name: "extra", location }] });
    const newLocation = join(await serverOwnedTempDir("pgha-ts2-"), "extra");
    cleanups.push(() => rm(join(newLocation, ".."), { recursive: true, force: true }));

    const restored = await restoreAndStart(taken.stdout.trim(), env, [
      "--tablespace-map",
      `extra=${newLocation}`,
    ]);
    cleanups.push(() => restored.destroy());
    expect(await restored.sql("SELECT count(*) FROM in_ts")).toBe("5000");
    expect(
      await restored.sql(
        "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'extra'",
      ),
    ).toBe(newLocation);
    expect((await readdir(newLocation)).some((name) => name.startsWith("PG_15_"))).toBe(true);
    await cluster.sql("DROP TABLE in_ts");
    await cluster.sql("DROP TABLESPACE extra");
  });

  it("refuses a second backup while one holds the cluster lock, and takes over a stale one", async () => {
    const store = await openStore(
      resolveConfig({ flags: {}, env, file: undefined }),
      memoryLogger(),
    );
    const handOver = async () => {
      // The lock was written by this (root) test process: give it to the server user.
      const user = serverUser();
      if (repo.dir && user) await runCommand("chown", ["-R", `${user.uid}:${user.gid}`, repo.dir]);
    };
    const lock = await acquireLock(store, "main", {
      name: "cluster",
      purpose: "backup",
      ttlMs: 60_000,
      now: () => new Date(),
    });
    await handOver();
    try {
      const second = await runPgha(["backup", "--fast"], { env, asServerUser: true });
      expect(second.code, second.stderr).toBe(9);
      expect(second.stderr).toMatch(/locked by backup/);
    } finally {
      await lock.release();
    }
    // A lock whose holder stopped refreshing it (a crashed run) is taken over.
    await acquireLock(store, "main", {
      name: "cluster",
      purpose: "backup",
      ttlMs: 1000,
      refreshMs: 3_600_000,
      now: () => new Date(Date.now() - 60_000),
    });
    await handOver();
    const third = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(third.code, third.stderr).toBe(0);
  });

  it("refuses to fetch into a non-empty directory and leaves it as it was", async () => {
    const dir = await serverOwnedTempDir("pgha-nonempty-");
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, "keep.txt"), "mine");
    const fetched = await runPgha(["backup", "fetch", "latest", dir], { env, asServerUser: true });
    // Exit 2 (usage): exit 3 means a refused input file (issue 12, point 11).
    expect(fetched.code).toBe(2);
    expect(fetched.stderr).toMatch(/not empty/);
    expect(await readdir(dir)).toEqual(["keep.txt"]);
  });
});

describe.skipIf(!pg)("backup refusals", () => {
  it("refuses a backup when archiving is off, with a hint", async () => {
    const repo = await serverOwnedTempDir("pgha-repo-");
    const cluster = await PgCluster.init();
    try {
      await cluster.start();
      const env = { PGHA_REPO: repo, ...cluster.connEnv() };
      const taken = await runPgha(["backup"], { env, asServerUser: true });
      expect(taken.code).toBe(3);
      expect(taken.stderr).toMatch(/archiving is off/);
      expect(taken.stderr).toMatch(/HINT: .*archive_command = 'pgha wal-push %p'/);
      expect(await readdir(repo)).toEqual([]);
    } finally {
      await cluster.destroy();
      await rm(repo, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!pg)("fetching a damaged backup", () => {
  it("fails with exit 6 and leaves the target empty", async () => {
    const { repo, env: env0 } = await localRepoEnv();
    const cluster = await PgCluster.init({ env: env0, conf: archiveConf() });
    const target = await serverOwnedTempDir("pgha-damaged-");
    try {
      await cluster.start();
      const env = { ...env0, ...cluster.connEnv() };
      const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
      expect(taken.code, taken.stderr).toBe(0);
      const info = await runPgha(["backup", "info", taken.stdout.trim(), "--json"], {
        env,
        asServerUser: true,
      });
      // The largest of the backup's objects (the data directory is stored as several).
      const { objects } = JSON.parse(info.stdout) as {
        objects: { key: string; storedSize: number }[];
      };
      const largest = objects.reduce((a, b) => (b.storedSize > a.storedSize ? b : a));
      const object = join(repo, largest.key);
      const bytes = await readFile(object);
      bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
      await writeFile(object, bytes);
      const fetched = await runPgha(["backup", "fetch", "latest", join(target, "data")], {
        env,
        asServerUser: true,
      });
      expect(fetched.code, fetched.stderr).toBe(6);
      expect(fetched.stderr).toMatch(/corrupt|checksum/);
      expect(await readdir(join(target, "data"))).toEqual([]);
    } finally {
      await cluster.destroy();
      await rm(repo, { recursive: true, force: true });
      await rm(target, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!pg)("backup from a standby", () => {
  it("backs up a streaming standby; the copy recovers to the backup's end", async () => {
    const { repo, env: env0 } = await localRepoEnv();
    const primary = await PgCluster.init({ env: env0, conf: archiveConf() });
    let standby: PgCluster | undefined;
    let restored: PgCluster | undefined;
    try {
      await primary.start();
      await primary.sql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g");
      const standbyParent = await serverOwnedTempDir("pgha-standby-");
      const standbyData = join(standbyParent, "data");
      await primary.bin("pg_basebackup", [
        ...primary.connArgs(),
        "-D",
        standbyData,
        "-R",
        "-X",
        "stream",
      ]);
      standby = await PgCluster.adopt(standbyData, { env: env0, conf: ["archive_mode = on"] });
      await standby.start();
      const env = { ...env0, ...standby.connEnv(), PGHA_PGDATA: standbyData };
      // A quiet primary does not switch segments: keep it switching while the backup waits.
      let switching = true;
      const switcher = (async () => {
        while (switching) {
          await primary
            .sql("INSERT INTO t VALUES (0); SELECT pg_switch_wal()")
            .catch(() => undefined);
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      const taken = await runPgha(["backup"], { env, asServerUser: true });
      switching = false;
      await switcher;
      expect(taken.code, taken.stderr).toBe(0);
      const info = JSON.parse(
        (await runPgha(["backup", "info", "latest", "--json"], { env, asServerUser: true })).stdout,
      );
      expect(info.fromStandby).toBe(true);
      restored = await restoreAndStart(taken.stdout.trim(), env0);
      expect(Number(await restored.sql("SELECT count(*) FROM t WHERE id > 0"))).toBe(1000);
    } finally {
      await restored?.destroy();
      await standby?.destroy();
      await primary.destroy();
      await rm(repo, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!pg)("a backup whose upload fails in one of its parallel jobs", () => {
  it("fails as a whole: no manifest, no objects, the lock released, the server out of backup mode", async () => {
    const { repo, env: env0 } = await localRepoEnv();
    const cluster = await PgCluster.init({ env: env0, conf: archiveConf() });
    try {
      await cluster.start();
      await cluster.pgbench(["-i", "-s", "5", "-q"]);
      const env = { ...env0, ...cluster.connEnv() };
      const config = resolveConfig({ flags: {}, env, file: undefined });
      const inner = await openStore(config, memoryLogger());
      const store = Object.create(inner) as ObjectStore;
      let dataPuts = 0;
      store.put = async (key, body, options) => {
        if (key.includes("/data/") && ++dataPuts === 2) {
          // Some of the body goes out, then the connection breaks for good.
          for await (const _ of body as AsyncIterable<Buffer>) break;
          throw new StorageError("injected: upload reset", { transient: false });
        }
        return inner.put(key, body, options);
      };
      const server = await PgServer.connect(
        `postgresql://postgres@/postgres?host=${encodeURIComponent(cluster.socketDir)}&port=${cluster.port}`,
      );
      try {
        await expect(
          takeBaseBackup(
            {
              store,
              cluster: "main",
              compression: { algorithm: "zstd", level: 3 },
              server,
              pgdata: cluster.dataDir,
              archiveTimeoutMs: 60_000,
              lockTtlMs: 60_000,
              jobs: 3,
              log: memoryLogger(),
              now: () => new Date(),
              sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
              progress: () => undefined,
            },
            { fast: true, label: undefined, pin: false },
          ),
        ).rejects.toThrow(/injected: upload reset/);
      } finally {
        await server.close();
      }
      expect(dataPuts).toBeGreaterThanOrEqual(2);
      const left: string[] = [];
      for await (const entry of inner.list(backupsPrefix("main"))) left.push(entry.key);
      expect(left).toEqual([]);
      expect(await inner.head(lockKey("main", "cluster"))).toBeUndefined();
      // The server left backup mode: the next backup (as the server user) succeeds.
      const user = serverUser();
      if (user) await runCommand("chown", ["-R", `${user.uid}:${user.gid}`, repo]);
      const next = await runPgha(["backup", "--fast", "--jobs", "3"], { env, asServerUser: true });
      expect(next.code, next.stderr).toBe(0);
    } finally {
      await cluster.destroy();
      await rm(repo, { recursive: true, force: true });
    }
  });
});
