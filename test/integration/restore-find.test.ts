/**
 * `pgha restore find` end to end on a real PostgreSQL 15, with the local repository and
 * the S3 test server: tables filled, a backup, then a DROP TABLE, a TRUNCATE and a DELETE
 * of every row, each in a transaction whose xid the test records, between other activity;
 * a table dropped, re-created under its name and dropped again. find names each xid
 * first, and a restore with the command it prints brings the table back with every row.
 * A name never dropped yields an empty list and exit 0.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PgCluster, serverOwnedTempDir } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface JsonFinding {
  time: string;
  xid: number;
  lsn: string;
  kind: string;
  database: string;
  relation: string;
  rows?: number;
  backup: string | null;
  commands: { restore: string; drill: string } | null;
}

describe.skipIf(!pg).each(repoKinds(server))("restore find with a %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  const clusters: PgCluster[] = [];
  const xids: Record<string, string> = {};

  /** Runs statements in one transaction and returns its xid. */
  async function inTransaction(statements: string, database = "postgres"): Promise<string> {
    const out = await primary.sql(
      `BEGIN; SELECT 'xid:' || txid_current(); ${statements}; COMMIT`,
      database,
    );
    const xid = /xid:(\d+)/.exec(out)?.[1];
    if (!xid) throw new Error(`no xid in ${out}`);
    return xid;
  }

  async function activity(): Promise<void> {
    await primary.sql("INSERT INTO noise SELECT g, md5(g::text) FROM generate_series(1, 300) g");
    await primary.sql("UPDATE noise SET note = 'x' WHERE id % 7 = 0");
    await primary.sql("DELETE FROM noise WHERE id % 5 = 0");
    // A new segment each time: find reads its segments in chunks, and findings cross them.
    await primary.sql("SELECT pg_switch_wal()");
  }

  async function archiveNow(): Promise<void> {
    const name = await primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    for (let i = 0; i < 240; i++) {
      const done = await primary.sql(
        "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
      );
      if (done >= name) return;
      await sleep(250);
    }
    throw new Error(`segment ${name} was not archived`);
  }

  async function find(args: string[]): Promise<{ code: number; findings: JsonFinding[] }> {
    const run = await runPgha(["restore", "find", ...args, "--json"], { env, asServerUser: true });
    expect(run.code, run.stderr).toBe(0);
    return { code: run.code, findings: JSON.parse(run.stdout).findings };
  }

  /** Runs the printed restore command into a new directory and starts the copy: it promotes at the target. */
  async function restoreWith(command: string): Promise<PgCluster> {
    expect(command).toMatch(/^pgha restore /);
    const parent = await serverOwnedTempDir("pgha-find-");
    const dataDir = join(parent, "data");
    const args = command.replace("<new data directory>", dataDir).split(" ").slice(1);
    const restored = await runPgha(args, { env, asServerUser: true });
    expect(restored.code, restored.stderr).toBe(0);
    const copy = await PgCluster.adopt(dataDir, { env });
    copy.removeAlso.push(parent);
    clusters.push(copy);
    await copy.start().catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await copy.serverLog()}`);
    });
    await copy.waitPromoted();
    expect(await copy.serverLog()).toMatch(/recovery stopping before commit of transaction/);
    return copy;
  }

  beforeAll(async () => {
    ({ repo, cluster: primary, env } = await archivingCluster(kind, server));
    await primary.sql(
      `CREATE TABLE noise (id int, note text);
       CREATE TABLE orders (id int PRIMARY KEY, note text);
       INSERT INTO orders SELECT g, repeat('o', 300) FROM generate_series(1, 1000) g;
       CREATE TABLE ledger (id int, note text);
       INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 1500) g;
       CREATE TABLE events (id int, note text);
       INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
       CREATE TABLE again (id int);
       INSERT INTO again VALUES (1)`,
    );
    const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
    await activity();
    xids.drop = await inTransaction("INSERT INTO noise VALUES (0); DROP TABLE orders");
    await activity();
    xids.truncate = await inTransaction("TRUNCATE ledger");
    await activity();
    xids.delete = await inTransaction("DELETE FROM events");
    await activity();
    // VACUUM FULL and CLUSTER give tables new files too: neither is a TRUNCATE.
    await primary.sql("VACUUM FULL noise");
    xids.againFirst = await inTransaction("DROP TABLE again");
    await primary.sql("CREATE TABLE again (id int, other text); INSERT INTO again VALUES (2)");
    await activity();
    xids.againSecond = await inTransaction("DROP TABLE again");
    // Rolled back: not a finding.
    await primary.sql("CREATE TABLE kept (id int)");
    await primary.sql("BEGIN; DROP TABLE kept; ROLLBACK");
    await activity();
    await archiveNow();
  });

  afterAll(async () => {
    for (const c of clusters) await c.destroy().catch(() => undefined);
    await primary?.destroy();
    await repo?.cleanup();
  });

  it("finds the DROP TABLE's xid first, and its restore command brings the table back with every row", async () => {
    const { findings } = await find(["--dropped", "orders"]);
    expect(findings.map((f) => [f.xid, f.kind, f.relation])).toEqual([
      [Number(xids.drop), "drop", "public.orders"],
    ]);
    const [found] = findings;
    expect(found?.database).toBe("postgres");
    expect(found?.commands?.restore).toContain(`--target-xid ${xids.drop} --target-exclusive`);
    expect(found?.commands?.drill).toContain(`--target-xid ${xids.drop} --target-exclusive`);
    const copy = await restoreWith(found?.commands?.restore ?? "");
    expect(await copy.sql("SELECT count(*) FROM orders")).toBe("1000");
    // Stopped just before the DROP's transaction: its own insert is not there either.
    expect(await copy.sql("SELECT count(*) FROM noise WHERE id = 0")).toBe("0");
  });

  it("finds the TRUNCATE (not VACUUM FULL), and the restore has every row", async () => {
    const { findings } = await find(["--truncated", "public.ledger"]);
    expect(findings.map((f) => [f.xid, f.kind])).toEqual([[Number(xids.truncate), "truncate"]]);
    expect((await find(["--truncated", "noise"])).findings).toEqual([]);
    const copy = await restoreWith(findings[0]?.commands?.restore ?? "");
    expect(await copy.sql("SELECT count(*) FROM ledger")).toBe("1500");
  });

  it("finds the DELETE of every row with its row count, and the restore has every row", async () => {
    const { findings } = await find(["--deleted-from", "events"]);
    expect(findings.map((f) => [f.xid, f.kind, f.rows])).toEqual([
      [Number(xids.delete), "delete", 2000],
    ]);
    // The activity's deletes (60 rows at a time) are under the threshold.
    expect((await find(["--deleted-from", "noise"])).findings).toEqual([]);
    const smaller = (await find(["--deleted-from", "noise", "--min-rows", "50"])).findings;
    // Six rounds of activity delete 60 rows each (one of them also the DROP transaction's row).
    expect(smaller.length).toBe(6);
    expect(smaller.every((f) => f.rows === 60 || f.rows === 61)).toBe(true);
    const copy = await restoreWith(findings[0]?.commands?.restore ?? "");
    expect(await copy.sql("SELECT count(*) FROM events")).toBe("2000");
  });

  it("a table dropped, re-created and dropped again: two findings, newest first", async () => {
    const { findings } = await find(["--dropped", "again"]);
    expect(findings.map((f) => f.xid)).toEqual([Number(xids.againSecond), Number(xids.againFirst)]);
    expect(findings.every((f) => f.relation === "public.again" && f.kind === "drop")).toBe(true);
    expect((findings[0]?.time ?? "") >= (findings[1]?.time ?? "")).toBe(true);
  });

  it("a name never dropped: exit 0, an empty list, one clear line", async () => {
    expect((await find(["--dropped", "kept"])).findings).toEqual([]);
    const text = await runPgha(["restore", "find", "--dropped", "nosuch"], {
      env,
      asServerUser: true,
    });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trim()).toMatch(
      /^no transaction dropped nosuch in the WAL .* after backup \S+$/,
    );
  });

  it("refuses a name that is no table name and --since after --until (exit 2, a hint)", async () => {
    const bad = await runPgha(["restore", "find", "--dropped", "a.b.c"], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dropped 'a\.b\.c' is not a table name\nHINT: /);
    const order = await runPgha(
      ["restore", "find", "--dropped", "t", "--since", "-1h", "--until", "-2h"],
      { env },
    );
    expect(order.code).toBe(2);
    expect(order.stderr).toMatch(/--since is after --until/);
  });
});
