/**
 * End to end on a real PostgreSQL 15 with archive_command = pgha wal-push, into the local
 * repository and into the S3 test server: every segment arrives and comes back
 * byte-identical through wal-fetch, and each refusal and failure exits as documented.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWalFileName } from "../../src/wal/names.js";
import { archivedWalKeys, openTestStore } from "../helpers/archived-wal.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { freePort, PgCluster } from "../helpers/pg-cluster.js";
import { pghaCommandLine, runPgha } from "../helpers/pgha.js";
import { makeTestRepo, repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

describe.skipIf(!pg).each(repoKinds(server))("WAL archiving into a %s repository", (kind) => {
  let repo: TestRepo;
  let cluster: PgCluster;
  let env: Record<string, string>;
  let scratch: string;
  let archived: string[] = [];

  beforeAll(async () => {
    repo = await makeTestRepo(kind, server);
    env = { ...repo.env, PGHA_CLUSTER: "main", PGHA_RETRY_TIMEOUT: "20s" };
    cluster = await PgCluster.init({
      env,
      conf: [
        "archive_mode = on",
        `archive_command = '${pghaCommandLine("wal-push %p").replace(/'/g, "''")}'`,
        // Keep every segment in pg_wal so the test can compare what comes back.
        "wal_keep_size = '2GB'",
        "max_wal_size = '2GB'",
      ],
    });
    await cluster.start();
    scratch = await mkdtemp(join(tmpdir(), "pgha-fetch-"));
  });

  afterAll(async () => {
    await cluster?.destroy();
    await repo?.cleanup();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("archives every segment of a pgbench run and fetches each back byte-identical", async () => {
    await cluster.pgbench(["-i", "-s", "10", "-q"]);
    await cluster.pgbench(["-T", "3", "-c", "2"]);
    const last = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
    const deadline = Date.now() + 120_000;
    let stats = "";
    while (Date.now() < deadline) {
      stats = await cluster.sql(
        "SELECT coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver",
      );
      const [lastArchived = ""] = stats.split("|");
      if (lastArchived >= last) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const [reached = "", failed] = stats.split("|");
    expect(reached >= last, `archiver reached ${stats}, wanted ${last}`).toBe(true);
    expect(failed).toBe("0");

    const status = await readdir(join(cluster.dataDir, "pg_wal", "archive_status"));
    archived = status
      .filter((f) => f.endsWith(".done"))
      .map((f) => f.slice(0, -".done".length))
      .filter((f) => parseWalFileName(f)?.kind === "segment")
      .sort();
    expect(archived.length).toBeGreaterThanOrEqual(8);
    expect(archived).toContain(last);

    for (const name of archived) {
      const dest = join(scratch, name);
      const fetched = await runPgha(["wal-fetch", name, dest], { env });
      expect(fetched.code, fetched.stderr).toBe(0);
      const original = await readFile(join(cluster.dataDir, "pg_wal", name));
      const back = await readFile(dest);
      expect(back.equals(original), `${name} differs`).toBe(true);
    }
    expect(await readdir(scratch)).toHaveLength(archived.length);
    expect(await cluster.serverLog()).not.toMatch(/archive command failed|pgha: (error|internal)/);
  });

  it("accepts the same content pushed twice", async () => {
    const name = archived[0] ?? "";
    const again = await runPgha(["wal-push", join(cluster.dataDir, "pg_wal", name)], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already archived with the same content/);
  });

  it("refuses different content under an archived name and keeps the original", async () => {
    const name = archived[1] ?? "";
    const fake = join(scratch, "other");
    await rm(fake, { recursive: true, force: true });
    await (await import("node:fs/promises")).mkdir(fake);
    const path = join(fake, name);
    await copyFile(join(cluster.dataDir, "pg_wal", name), path);
    const bytes = await readFile(path);
    bytes[100_000] = (bytes[100_000] ?? 0) ^ 0x55;
    await writeFile(path, bytes);
    const pushed = await runPgha(["wal-push", path], { env });
    expect(pushed.code).toBe(5);
    expect(pushed.stderr).toMatch(/already archived .* with different content/);
    expect(pushed.stderr).toMatch(/^HINT: /m);

    const dest = join(scratch, `${name}.check`);
    expect((await runPgha(["wal-fetch", name, dest], { env })).code).toBe(0);
    expect(
      (await readFile(dest)).equals(await readFile(join(cluster.dataDir, "pg_wal", name))),
    ).toBe(true);
  });

  it("refuses a segment of another cluster", async () => {
    const other = await PgCluster.init();
    try {
      const segment = join(other.dataDir, "pg_wal", "000000010000000000000001");
      const pushed = await runPgha(["wal-push", segment], { env });
      expect(pushed.code).toBe(4);
      expect(pushed.stderr).toMatch(/segment is from system \d+ but .* is system \d+/);
    } finally {
      await other.destroy();
    }
  });

  it("exits 1 quickly for a name that is not in the repository, writing nothing", async () => {
    for (const name of ["0000000100000000000000FE", "00000009.history"]) {
      const dest = join(scratch, `missing-${name}`);
      const started = Date.now();
      const fetched = await runPgha(["wal-fetch", name, dest], { env });
      expect(fetched.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(5000);
      await expect(readFile(dest)).rejects.toThrow();
    }
  });

  it("fails on a corrupted stored object and leaves no file: 126 in recovery, 1 on a standby", async () => {
    const name = archived[2] ?? "";
    const file = parseWalFileName(name);
    if (!file) throw new Error("bad name");
    const store = await openTestStore(env);
    for (const key of await archivedWalKeys(store, file.name)) await repo.corrupt(key);
    const dir = await mkdtemp(join(tmpdir(), "pgha-corrupt-"));
    try {
      const fetched = await runPgha(["wal-fetch", name, "pg_wal/RECOVERYXLOG"], { env, cwd: dir });
      // pg_wal does not exist in dir yet: create it like a data directory has it.
      expect(fetched.code).toBe(126);
      await (await import("node:fs/promises")).mkdir(join(dir, "pg_wal"));
      const again = await runPgha(["wal-fetch", name, "pg_wal/RECOVERYXLOG"], { env, cwd: dir });
      expect(again.code).toBe(126);
      expect(again.stderr).toMatch(/corrupt/);
      expect(await readdir(join(dir, "pg_wal"))).toEqual([]);
      await writeFile(join(dir, "standby.signal"), "");
      const standby = await runPgha(["wal-fetch", name, "pg_wal/RECOVERYXLOG"], { env, cwd: dir });
      expect(standby.code).toBe(1);
      expect(await readdir(join(dir, "pg_wal"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("wal-fetch against unreachable S3", () => {
  it("exits 126 without standby.signal and 1 with it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-unreach-"));
    try {
      const env = {
        PGHA_REPO: "s3://pgha-test/nowhere",
        PGHA_S3_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
        PGHA_RETRY_TIMEOUT: "1s",
        AWS_ACCESS_KEY_ID: "x",
        AWS_SECRET_ACCESS_KEY: "y",
      };
      const recovery = await runPgha(["wal-fetch", "000000010000000000000001", "RECOVERYXLOG"], {
        env,
        cwd: dir,
      });
      expect(recovery.code).toBe(126);
      expect(recovery.stderr).toMatch(/failed after \d+ attempts/);
      await writeFile(join(dir, "standby.signal"), "");
      const standby = await runPgha(["wal-fetch", "000000010000000000000001", "RECOVERYXLOG"], {
        env,
        cwd: dir,
      });
      expect(standby.code).toBe(1);
      expect(await readdir(dir)).toEqual(["standby.signal"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
