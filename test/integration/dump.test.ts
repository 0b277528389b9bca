/**
 * Logical dumps end to end on a real PostgreSQL 15, into the local repository and the S3
 * test server: dump, drop the database and its owner role, restore globals then the
 * database, and compare content and ownership; restore under a new name; failures leave
 * no listed dump set and a failed restore changes nothing.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpObjectKey } from "../../src/repository/keys.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PG_BIN, PgCluster, runCommand, serverOwnedTempDir } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { makeTestRepo, repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

/** Content and ownership of a database, as one comparable string. */
async function fingerprint(cluster: PgCluster, db: string): Promise<string> {
  return cluster.sql(
    `SELECT string_agg(x, ' | ' ORDER BY x) FROM (
       SELECT relname || ':' || relkind::text || ':' || pg_get_userbyid(relowner) AS x
         FROM pg_class WHERE relnamespace = 'public'::regnamespace
       UNION ALL SELECT 'items:' || count(*) || ':' || md5(string_agg(id || name, ',' ORDER BY id)) FROM items
       UNION ALL SELECT 'orders:' || count(*) || ':' || md5(string_agg(id || '/' || item, ',' ORDER BY id)) FROM orders
       UNION ALL SELECT 'view:' || count(*) FROM big_orders
       UNION ALL SELECT 'seq:' || last_value FROM order_numbers
       UNION ALL SELECT 'db owner:' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()
     ) t`,
    db,
  );
}

async function makeShop(cluster: PgCluster, db: string, owner: string): Promise<void> {
  await cluster.sql(`CREATE DATABASE ${db} OWNER ${owner}`);
  await cluster.sql(
    `SET ROLE ${owner};
     CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
     CREATE TABLE orders (id bigint PRIMARY KEY, item int REFERENCES items(id));
     CREATE SEQUENCE order_numbers START 1000;
     CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 500;
     INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 300) g;
     INSERT INTO orders SELECT g, 1 + g % 300 FROM generate_series(1, 2000) g;
     SELECT nextval('order_numbers') FROM generate_series(1, 42);`,
    db,
  );
}

describe.skipIf(!pg).each(repoKinds(server))("logical dumps with a %s repository", (kind) => {
  let cluster: PgCluster;
  let env: Record<string, string>;
  let repo: TestRepo;

  beforeAll(async () => {
    repo = await makeTestRepo(kind, server);
    cluster = await PgCluster.init();
    await cluster.start();
    env = { ...repo.env, ...cluster.connEnv(), PGHA_CLUSTER: "main", PGHA_LOG_LEVEL: "warn" };
  });

  afterAll(async () => {
    await cluster?.destroy();
    await repo?.cleanup();
  });

  it("restores globals then a dropped database with identical content and ownership", async () => {
    await cluster.sql("CREATE ROLE shop_owner LOGIN PASSWORD 'secret'");
    await makeShop(cluster, "shop", "shop_owner");
    const before = await fingerprint(cluster, "shop");
    expect(before).toMatch(/orders:r:shop_owner/);

    const dumped = await runPgha(["dump", "--db", "shop", "--label", "nightly"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    const id = dumped.stdout.trim();
    const listed = JSON.parse((await runPgha(["dump", "list", "--json"], { env })).stdout);
    expect(listed).toMatchObject([
      { id, label: "nightly", databases: [{ name: "shop", owner: "shop_owner" }] },
    ]);

    await cluster.sql("DROP DATABASE shop");
    await cluster.sql("DROP ROLE shop_owner");
    const restored = await runPgha(["dump", "restore", id, "--globals", "--db", "shop"], { env });
    expect(restored.code, restored.stderr).toBe(0);
    expect(await fingerprint(cluster, "shop")).toBe(before);
    expect(await cluster.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'shop_owner'")).toBe(
      "t",
    );
  });

  it("dumps two databases and restores one under a new name; refusals change nothing", async () => {
    await cluster.sql("CREATE ROLE two_owner");
    await makeShop(cluster, "two_a", "two_owner");
    await makeShop(cluster, "two_b", "two_owner");
    await cluster.sql("UPDATE items SET name = 'changed' WHERE id < 10", "two_b");
    const expected = await fingerprint(cluster, "two_b");
    const dumped = await runPgha(["dump", "--db", "two_a", "--db", "two_b"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    const id = dumped.stdout.trim();

    const copy = await runPgha(["dump", "restore", id, "--db", "two_b", "--to-db", "two_b_copy"], {
      env,
    });
    expect(copy.code, copy.stderr).toBe(0);
    expect(await fingerprint(cluster, "two_b_copy")).toBe(
      expected.replace("db owner:two_owner", "db owner:two_owner"),
    );

    const exists = await runPgha(["dump", "restore", id, "--db", "two_a"], { env });
    expect(exists.code).toBe(3);
    expect(exists.stderr).toMatch(/database 'two_a' already exists; nothing was changed/);
    const missing = await runPgha(["dump", "restore", id, "--db", "nope", "--to-db", "fresh"], {
      env,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/has no database 'nope'.*\n.*HINT: it has: two_a, two_b/);
    expect(
      await cluster.sql("SELECT count(*) FROM pg_database WHERE datname IN ('fresh', 'nope')"),
    ).toBe("0");

    const dir = await serverOwnedTempDir("pgha-dumpfetch-");
    try {
      const fetched = await runPgha(["dump", "fetch", id, dir], { env });
      expect(fetched.code, fetched.stderr).toBe(0);
      expect((await readdir(dir)).sort()).toEqual(["globals.sql", "two_a.dump", "two_b.dump"]);
      const list = await runCommand(join(PG_BIN, "pg_restore"), [
        "--list",
        join(dir, "two_b.dump"),
      ]);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/TABLE public orders two_owner/);
      expect(await readFile(join(dir, "globals.sql"), "utf8")).toMatch(/CREATE ROLE two_owner/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fails on a corrupt object and leaves no database behind", async () => {
    const dumped = await runPgha(["dump", "--db", "two_a"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    const manifest = JSON.parse(
      (await runPgha(["dump", "info", dumped.stdout.trim(), "--json"], { env })).stdout,
    );
    await repo.corrupt(dumpObjectKey("main", manifest.id, 1));
    const restored = await runPgha(
      ["dump", "restore", manifest.id, "--db", "two_a", "--to-db", "from_corrupt"],
      { env },
    );
    expect(restored.code).toBe(6);
    expect(restored.stderr).toMatch(/corrupt/);
    expect(
      await cluster.sql("SELECT count(*) FROM pg_database WHERE datname = 'from_corrupt'"),
    ).toBe("0");
  });
});

describe.skipIf(!pg)("failing dumps leave no dump set", () => {
  let cluster: PgCluster;
  let repo: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    repo = await serverOwnedTempDir("pgha-repo-");
    cluster = await PgCluster.init();
    await cluster.start();
    env = { PGHA_REPO: repo, PGHA_CLUSTER: "main", ...cluster.connEnv() };
  });
  afterAll(async () => {
    await cluster?.destroy();
    await rm(repo, { recursive: true, force: true });
  });

  async function noDumpSets(): Promise<void> {
    const listed = await runPgha(["dump", "list", "--json"], { env });
    expect(JSON.parse(listed.stdout)).toEqual([]);
    const dumps = join(repo, "v1/clusters/main/dumps");
    const left = await readdir(dumps, { recursive: true }).catch(() => [] as string[]);
    expect(left.filter((name) => name.includes("."))).toEqual([]);
  }

  it("a pg_dump that fails midway (permission denied) fails the set and removes its objects", async () => {
    await cluster.sql("CREATE ROLE dumper LOGIN");
    await cluster.sql("CREATE DATABASE d_ok OWNER dumper");
    await cluster.sql(
      "SET ROLE dumper; CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g",
      "d_ok",
    );
    await cluster.sql("CREATE DATABASE d_secret");
    await cluster.sql(
      "CREATE TABLE secret AS SELECT 1 AS x; REVOKE ALL ON secret FROM PUBLIC",
      "d_secret",
    );
    const dumped = await runPgha(
      ["dump", "--db", "d_ok", "--db", "d_secret", "--no-role-passwords"],
      {
        env: { ...env, PGUSER: "dumper" },
      },
    );
    expect(dumped.code).toBe(10);
    expect(dumped.stderr).toMatch(
      /pg_dump of database "d_secret" exited with 1: .*permission denied/,
    );
    await noDumpSets();
  });

  it("a wrong client bin dir or an unknown database is refused before anything is written", async () => {
    const wrongBin = await runPgha(["dump", "--pg-bin", "/nonexistent/bin"], { env });
    expect(wrongBin.code).toBe(2);
    expect(wrongBin.stderr).toMatch(/cannot run \/nonexistent\/bin\/pg_dump/);
    const unknown = await runPgha(["dump", "--db", "no_such_db"], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/database 'no_such_db' does not exist/);
    await noDumpSets();
  });

  it("reports pg_restore's own error for a valid dump (not corruption), and drops what it created", async () => {
    await cluster.sql("CREATE ROLE big_owner");
    await cluster.sql("CREATE DATABASE big OWNER big_owner");
    await cluster.sql(
      "SET ROLE big_owner; CREATE TABLE b AS SELECT g, md5(g::text) AS v FROM generate_series(1, 300000) g",
      "big",
    );
    const dumped = await runPgha(["dump", "--db", "big"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    await cluster.sql("DROP DATABASE big");
    await cluster.sql("DROP ROLE big_owner");
    const restored = await runPgha(
      ["dump", "restore", "latest", "--db", "big", "--to-db", "big_copy"],
      { env },
    );
    expect(restored.code, restored.stderr).toBe(10);
    expect(restored.stderr).toMatch(
      /pg_restore of database "big" into "big_copy" exited with 1: .*role "big_owner" does not exist/,
    );
    expect(await cluster.sql("SELECT count(*) FROM pg_database WHERE datname = 'big_copy'")).toBe(
      "0",
    );
  });

  it("treats database names that look like connection strings as names", async () => {
    await cluster.sql(`CREATE DATABASE "dbname=postgres"`);
    await cluster.sql("CREATE TABLE only_here AS SELECT 1 AS x", "dbname='dbname=postgres'");
    const dumped = await runPgha(["dump", "--db", "dbname=postgres"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    const restored = await runPgha(
      ["dump", "restore", "latest", "--db", "dbname=postgres", "--to-db", "host=elsewhere x"],
      { env },
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(await cluster.sql("SELECT count(*) FROM only_here", "dbname='host=elsewhere x'")).toBe(
      "1",
    );
    expect(await cluster.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")).toBe(
      "0",
    );
  });

  it("changes no globals when the database restore is refused", async () => {
    await cluster.sql("CREATE ROLE limited CONNECTION LIMIT 5");
    const dumped = await runPgha(["dump", "--db", "d_ok"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    await cluster.sql("ALTER ROLE limited CONNECTION LIMIT 7");
    const refused = await runPgha(["dump", "restore", "latest", "--globals", "--db", "d_ok"], {
      env,
    });
    expect(refused.code).toBe(3);
    expect(await cluster.sql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'limited'")).toBe(
      "7",
    );
  });
});
