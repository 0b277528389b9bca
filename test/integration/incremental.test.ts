/**
 * Incremental backups end to end on a real PostgreSQL 15 with data checksums (issue 14,
 * "Done when"): a full and three increments with inserts, updates, deletes, VACUUM FULL, a
 * dropped and a created table and a new tablespace between them. Each backup of the chain
 * restores (PITR to a time after it) to exactly its rows and passes pg_checksums; restore
 * plan names the chain and refuses a chain with a member missing; restore --delta onto a
 * data directory one increment old (started and stopped since) gives the same tree, byte
 * for byte, as a restore into an empty directory, and refuses a running server's.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
  chown,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  symlink,
} from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const pg = havePostgres();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Paths, types, modes, sizes and sha256 below dir; `rename` rewrites link targets and file text. */
async function tree(
  dir: string,
  rename: (text: string) => string,
  rel = "",
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const info = await lstat(join(dir, path));
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isSymbolicLink()) out[path] = `link ${rename(await readlink(join(dir, path)))}`;
    else if (info.isDirectory()) {
      out[`${path}/`] = `dir ${mode}`;
      Object.assign(out, await tree(dir, rename, path));
    } else {
      let bytes = await readFile(join(dir, path));
      // The recovery settings name the restore's time and the tablespace's directory.
      if (path === "postgresql.auto.conf" || path === "tablespace_map")
        bytes = Buffer.from(rename(bytes.toString("utf8")).replace(/ at \d{4}-\S+Z/g, " at T"));
      out[path] = `${mode} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex")}`;
    }
  }
  return out;
}

const server = s3Server();

describe.skipIf(!pg).each(repoKinds(server))("incremental backups with a %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  const clusters: PgCluster[] = [];
  /** The backups of the chain, what the database held after each, and a time after it. */
  const chain: { id: string; rows: string; after: string }[] = [];
  let tsLocation = "";
  const timings: Record<string, number> = {};

  const state = () =>
    primary.sql(
      `SELECT string_agg(t || ':' || n, ' ' ORDER BY t) FROM (
         SELECT 'a' AS t, count(*) || '/' || md5(coalesce(string_agg(id || v, ',' ORDER BY id), '')) AS n FROM a
         UNION ALL SELECT c.relname, '' FROM pg_class c WHERE c.relname IN ('b', 'c', 'd') AND c.relkind = 'r') s`,
    );
  const rowsOf = (cluster: PgCluster) =>
    cluster.sql(
      `SELECT string_agg(t || ':' || n, ' ' ORDER BY t) FROM (
         SELECT 'a' AS t, count(*) || '/' || md5(coalesce(string_agg(id || v, ',' ORDER BY id), '')) AS n FROM a
         UNION ALL SELECT c.relname, '' FROM pg_class c WHERE c.relname IN ('b', 'c', 'd') AND c.relkind = 'r') s`,
    );
  /** Each table's content, for the tables other than a. */
  const tables = async (cluster: PgCluster, names: string[]) => {
    const out: string[] = [];
    for (const t of names)
      out.push(
        await cluster.sql(
          `SELECT count(*) || '/' || md5(coalesce(string_agg(id || v, ',' ORDER BY id), '')) FROM ${t}`,
        ),
      );
    return out.join(" ");
  };

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

  async function backup(type: "full" | "incr"): Promise<void> {
    const taken = await runPgha(["backup", "--fast", "--type", type], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
    const id = taken.stdout.trim();
    const extra = await tables(
      primary,
      ["b", "c", "d"].filter((t) => tablesNow.has(t)),
    );
    await sleep(1100);
    chain.push({ id, rows: `${await state()} | ${extra}`, after: new Date().toISOString() });
    await sleep(1100);
  }
  const tablesNow = new Set<string>();

  /** pgha restore into a new directory (timed), not started. */
  async function restoreInto(dataDir: string, at: number, more: string[] = []): Promise<string> {
    const b = chain[at];
    if (!b) throw new Error("no such backup");
    const map = at >= 3 ? ["--tablespace-map", `ts=${dataDir}-ts`] : [];
    const started = performance.now();
    const restored = await runPgha(
      [
        "restore",
        "--pgdata",
        dataDir,
        "--backup",
        b.id,
        "--target-time",
        b.after,
        "--target-action",
        "promote",
        ...map,
        ...more,
      ],
      { env, asServerUser: true },
    );
    expect(restored.code, restored.stderr + restored.stdout).toBe(0);
    timings[`${more.includes("--delta") ? "delta" : "restore"} ${at}`] =
      performance.now() - started;
    return restored.stdout;
  }

  async function startCopy(dataDir: string): Promise<PgCluster> {
    const copy = await PgCluster.adopt(dataDir, { env });
    clusters.push(copy);
    await copy.start().catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await copy.serverLog()}`);
    });
    await copy.waitPromoted();
    return copy;
  }

  beforeAll(async () => {
    ({ repo, cluster: primary, env } = await archivingCluster(kind, server));
    tsLocation = await serverOwnedTempDir("pgha-incr-ts-");
    await primary.sql("CREATE TABLE a (id int PRIMARY KEY, v text)");
    await primary.sql("INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
    await primary.sql("CREATE TABLE b (id int, v text)");
    await primary.sql("INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 3000) g");
    tablesNow.add("b");
    await backup("full");
    // 1: inserts, updates, deletes
    await primary.sql("INSERT INTO a SELECT g, md5(g::text) FROM generate_series(20001, 22000) g");
    await primary.sql("UPDATE a SET v = 'updated' WHERE id % 97 = 0");
    await primary.sql("DELETE FROM a WHERE id % 89 = 0");
    await primary.sql("UPDATE b SET v = 'x' WHERE id < 10");
    await backup("incr");
    // 2: VACUUM FULL (a new relfilenode), a dropped and a created table
    await primary.sql("DELETE FROM a WHERE id % 3 = 0");
    await primary.sql("VACUUM FULL a");
    await primary.sql("DROP TABLE b");
    tablesNow.delete("b");
    await primary.sql("CREATE TABLE c (id int, v text)");
    await primary.sql("INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 5000) g");
    tablesNow.add("c");
    await backup("incr");
    // 3: a new tablespace and a table in it
    await primary.sql(`CREATE TABLESPACE ts LOCATION '${tsLocation}'`);
    await primary.sql("CREATE TABLE d (id int, v text) TABLESPACE ts");
    await primary.sql("INSERT INTO d SELECT g, 'd' || g FROM generate_series(1, 4000) g");
    tablesNow.add("d");
    await primary.sql("UPDATE a SET v = 'three' WHERE id < 500");
    await backup("incr");
    // A commit after the last target, and the WAL up to it archived.
    await primary.sql("INSERT INTO a VALUES (1000000, 'after every target')");
    await archiveNow();
  }, 300_000);

  afterAll(async () => {
    for (const c of clusters) await c.destroy().catch(() => undefined);
    await primary?.destroy();
    await repo?.cleanup();
    console.log(
      `incremental restore timings (ms): ${JSON.stringify(timings, (_, v) => (typeof v === "number" ? Math.round(v) : v))}`,
    );
  });

  it("takes a full and three increments, each naming its chain", async () => {
    const listed = await runPgha(["backup", "list", "--json"], { env, asServerUser: true });
    expect(listed.code, listed.stderr).toBe(0);
    const backups = JSON.parse(listed.stdout) as { id: string }[];
    expect(backups.map((b) => b.id)).toEqual(chain.map((b) => b.id));
    const info = JSON.parse(
      (await runPgha(["backup", "info", chain[3]?.id ?? "", "--json"], { env, asServerUser: true }))
        .stdout,
    ) as { type: string; chain: string[] };
    expect(info.type).toBe("incr");
    expect(info.chain).toEqual(chain.slice(0, 3).map((b) => b.id));
    const planned = await runPgha(["restore", "plan", "--backup", chain[3]?.id ?? "", "--json"], {
      env,
      asServerUser: true,
    });
    expect(planned.code, planned.stderr).toBe(0);
    expect(JSON.parse(planned.stdout).chain).toEqual(chain.slice(0, 3).map((b) => b.id));
  });

  it("restores every backup of the chain to its rows, with valid checksums; --delta onto one an increment old gives a clean restore's tree", {
    timeout: 300_000,
  }, async () => {
    const parent = await serverOwnedTempDir("pgha-incr-");
    // Every backup of the chain with the local repository; the S3 one restores the two
    // newest (chains of three and four backups), which the --delta check needs.
    for (const at of kind === "local" ? [0, 1, 2, 3] : [2, 3]) {
      const dataDir = join(parent, `data-${at}`);
      await restoreInto(dataDir, at);
      const copy = await startCopy(dataDir);
      const names = ["b", "c", "d"].filter((t) => chain[at]?.rows.includes(`${t}:`));
      expect(`${await rowsOf(copy)} | ${await tables(copy, names)}`, `backup ${at}`).toBe(
        chain[at]?.rows,
      );
      if (at === 2) {
        // A running server's data directory is refused.
        const refused = await runPgha(
          [
            "restore",
            "--delta",
            "--pgdata",
            dataDir,
            "--backup",
            chain[3]?.id ?? "",
            "--tablespace-map",
            `ts=${dataDir}-ts`,
          ],
          { env, asServerUser: true },
        );
        expect(refused.code, refused.stderr).toBe(3);
        expect(refused.stderr).toMatch(/postmaster.pid names process \d+, which is running/);
      }
      await copy.stop("fast");
      const checked = await copy.bin("pg_checksums", ["--check", "-D", dataDir]);
      expect(checked.code, checked.stderr).toBe(0);
      expect(checked.stdout).toMatch(/Bad checksums:\s+0/);
    }
    // A clean restore of the last backup, and --delta onto the one restored (and started,
    // promoted, stopped) from the backup before it.
    const clean = join(parent, "clean-3");
    await restoreInto(clean, 3);
    const old = join(parent, "data-2");
    // Into a directory without a link of its own, the tablespace would be rewritten at
    // the primary's location, in use: refused before anything is written.
    const absent = join(parent, "absent");
    const foreign = await runPgha(
      ["restore", "--delta", "--pgdata", absent, "--backup", chain[3]?.id ?? ""],
      { env, asServerUser: true },
    );
    expect(foreign.code, foreign.stderr).toBe(3);
    expect(foreign.stderr).toMatch(
      /tablespace ts \(\d+\) would be rewritten in .*, which is not empty and is not/,
    );
    expect(existsSync(absent)).toBe(false);
    // A copy of the primary's data directory (cp -a keeps its links): its tablespace link
    // leads where the primary's does, the primary's own (the manifest names the primary's
    // data directory): refused, nothing written into the copy or the tablespace.
    const cpCopy = join(parent, "cp-a-copy");
    await mkdir(join(cpCopy, "global"), { recursive: true, mode: 0o700 });
    await copyFile(join(primary.dataDir, "PG_VERSION"), join(cpCopy, "PG_VERSION"));
    await copyFile(
      join(primary.dataDir, "global", "pg_control"),
      join(cpCopy, "global", "pg_control"),
    );
    await mkdir(join(cpCopy, "pg_tblspc"));
    const [oid] = await readdir(join(primary.dataDir, "pg_tblspc"));
    const primaryTs = await readlink(join(primary.dataDir, "pg_tblspc", oid as string));
    await symlink(primaryTs, join(cpCopy, "pg_tblspc", oid as string));
    const user = serverUser();
    if (user)
      for (const path of ["", "PG_VERSION", "global", "global/pg_control", "pg_tblspc"])
        await chown(join(cpCopy, path), user.uid, user.gid);
    const tsBefore = await tree(primaryTs, (text) => text);
    const shared = await runPgha(
      ["restore", "--delta", "--pgdata", cpCopy, "--backup", chain[3]?.id ?? ""],
      { env, asServerUser: true },
    );
    expect(shared.code, shared.stderr).toBe(3);
    expect(shared.stderr).toMatch(/the data directory the backup was taken from, links to as well/);
    expect((await readdir(cpCopy)).sort()).toEqual(["PG_VERSION", "global", "pg_tblspc"]);
    expect(await tree(primaryTs, (text) => text)).toEqual(tsBefore);
    const output = await restoreInto(old, 3, ["--delta"]);
    const kept = Number(/delta: kept\s+(\d+) files/.exec(output)?.[1]);
    expect(kept).toBeGreaterThan(100);
    expect(output).toMatch(/delta: removed\s+\d+ files/);
    const renamed = (base: string) => (text: string) => text.replaceAll(base, "DIR");
    expect(await tree(old, renamed(old))).toEqual(await tree(clean, renamed(clean)));
    expect(await tree(`${old}-ts`, renamed(old))).toEqual(
      await tree(`${clean}-ts`, renamed(clean)),
    );
    // Again without --tablespace-map: the tablespace is where the directory's own link
    // points (not the primary's location), and nothing differs.
    const again = await runPgha(
      [
        "restore",
        "--delta",
        "--pgdata",
        old,
        "--backup",
        chain[3]?.id ?? "",
        "--target-time",
        chain[3]?.after ?? "",
        "--target-action",
        "promote",
      ],
      { env, asServerUser: true },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(await tree(`${old}-ts`, renamed(old))).toEqual(
      await tree(`${clean}-ts`, renamed(clean)),
    );
    // And it starts to the last backup's rows.
    const copy = await startCopy(old);
    expect(`${await rowsOf(copy)} | ${await tables(copy, ["c", "d"])}`).toBe(chain[3]?.rows);
  });

  it("drills an incremental backup of the chain", async () => {
    const b = chain[1];
    const drilled = await runPgha(
      ["drill", "--backup", b?.id ?? "", "--target-time", b?.after ?? "", "--json"],
      {
        env,
        asServerUser: true,
      },
    );
    expect(drilled.code, drilled.stderr).toBe(0);
    expect(JSON.parse(drilled.stdout).passed).toBe(true);
  });

  it.skipIf(kind !== "local")(
    "refuses (exit 11) to plan a backup whose chain lacks a member",
    async () => {
      const manifest = join(
        env.PGHA_REPO ?? "",
        "v1",
        "clusters",
        "main",
        "backups",
        chain[1]?.id ?? "",
        "manifest.json",
      );
      await rename(manifest, `${manifest}.away`);
      try {
        const planned = await runPgha(["restore", "plan", "--backup", chain[3]?.id ?? ""], {
          env,
          asServerUser: true,
        });
        expect(planned.code, planned.stderr).toBe(11);
        expect(planned.stderr).toMatch(new RegExp(`needs backup ${chain[1]?.id} of its chain`));
      } finally {
        await rename(`${manifest}.away`, manifest);
      }
    },
  );
});
