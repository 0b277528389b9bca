/**
 * Incremental backups end to end on a real PostgreSQL 15: a full, then changes (inserts,
 * updates, VACUUM FULL, a new table in a new tablespace, a dropped table), then an
 * incremental whose manifest stores only what changed, and a second one on top. A promoted
 * restore (a new timeline) takes a full when asked for an increment. Restoring chains is
 * incremental.test.ts's subject; here the fetch of an increment assembles its chain.
 */
import { chown, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeBlockMap } from "../../src/backup/block-map.js";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import {
  type BackupFileEntry,
  type BackupManifest,
  readBackupManifest,
} from "../../src/repository/backup-manifest.js";
import { openStore } from "../../src/storage/open-store.js";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres } from "../helpers/components.js";
import { type PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { pghaCommandLine, runPgha } from "../helpers/pgha.js";
import { restoreAndStart } from "../helpers/restore.js";

const pg = havePostgres();

describe.skipIf(!pg)("incremental backups", () => {
  let setup: ArchivingSetup;
  let cluster: PgCluster;
  let env: Record<string, string>;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    // autovacuum off: a table the test does not touch stays byte for byte the same.
    setup = await archivingCluster("local", null, { conf: ["autovacuum = off"] });
    cluster = setup.cluster;
    env = setup.env;
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await setup?.destroy();
  });

  const manifestOf = async (id: string): Promise<BackupManifest> => {
    const store = await openStore(
      resolveConfig({ flags: {}, env, file: undefined }),
      memoryLogger(),
    );
    return readBackupManifest(store, "main", id);
  };

  /** Takes a backup; its id, its stderr (info level) and how long it took. */
  const backup = async (type: "full" | "incr" | "diff", over: Record<string, string> = {}) => {
    const started = Date.now();
    const taken = await runPgha(["backup", "--fast", "--type", type], {
      env: { ...env, PGHA_LOG_LEVEL: "info", ...over },
      asServerUser: true,
    });
    expect(taken.code, taken.stderr).toBe(0);
    // From the start to "data stored": reading, comparing and storing the files.
    const at = (what: RegExp) =>
      Date.parse(
        taken.stderr
          .split("\n")
          .find((l) => what.test(l))
          ?.split(" ")[0] ?? "",
      );
    const dataSeconds = (at(/data stored/) - at(/ started at /)) / 1000;
    return {
      id: taken.stdout.trim(),
      log: taken.stderr,
      seconds: (Date.now() - started) / 1000,
      dataSeconds,
    };
  };

  const pathOf = async (table: string) => cluster.sql(`SELECT pg_relation_filepath('${table}')`);
  const fileIn = (m: BackupManifest, path: string): BackupFileEntry | undefined =>
    m.files.find((f) => f.part === "base" && f.path === path);
  const storedAs = (f: BackupFileEntry | undefined) => (f ? (f.stored ?? "whole") : "absent");

  let fullId: string;
  let incrId: string;

  it("an incremental stores the changed blocks and new files, nothing of untouched files", async () => {
    await cluster.pgbench(["-i", "-s", "4", "-q"]);
    await cluster.sql(
      "CREATE TABLE untouched AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g;" +
        "CREATE TABLE grows AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g;" +
        "CREATE TABLE updated AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g;" +
        "CREATE TABLE rewritten AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 10000) g;" +
        "CREATE TABLE dropped AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g;" +
        "CREATE TABLE mostly AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;" +
        "CREATE UNLOGGED TABLE scratch AS SELECT g AS id FROM generate_series(1, 1000) g;",
    );
    // Hint bits and the visibility map set now, not by the first reads after the full.
    await cluster.sql("VACUUM (FREEZE, ANALYZE)");
    const before = {
      untouched: await pathOf("untouched"),
      accounts: await pathOf("pgbench_accounts"),
      grows: await pathOf("grows"),
      updated: await pathOf("updated"),
      rewritten: await pathOf("rewritten"),
      dropped: await pathOf("dropped"),
      mostly: await pathOf("mostly"),
      scratchInit: `${await pathOf("scratch")}_init`,
    };

    const full = await backup("incr"); // the first backup: a full, whatever was asked
    expect(full.log).toMatch(
      /taking a full backup instead of an incremental one: the cluster has no backup/,
    );
    fullId = full.id;
    const fullManifest = await manifestOf(full.id);
    expect(fullManifest).toMatchObject({ format: 1, type: "full", parent: null, chain: [] });
    // Where it was read from (restore --delta refuses a copy's links to its tablespaces).
    expect(fullManifest.dataDirectory).toBe(await cluster.sql("SHOW data_directory"));
    const accountsMap = decodeBlockMap(fileIn(fullManifest, before.accounts) as BackupFileEntry, 1);
    expect([...accountsMap.from].every((i) => i === 0)).toBe(true);
    expect(fileIn(fullManifest, "global/pg_control")?.blocks).toBeUndefined();

    const tsDir = await serverOwnedTempDir("pgha-ts-");
    const location = join(tsDir, "ts");
    await mkdir(location, { mode: 0o700 });
    const user = serverUser();
    if (user) await chown(location, user.uid, user.gid);
    cleanups.push(() => rm(tsDir, { recursive: true, force: true }));
    await cluster.sql(`CREATE TABLESPACE incr_ts LOCATION '${location}'`);
    for (const statement of [
      "INSERT INTO grows SELECT g, md5(g::text) FROM generate_series(50001, 60000) g",
      "UPDATE updated SET v = 'changed' WHERE id % 5000 = 0",
      // Every row: every old page changes (xmax) and as many new ones follow.
      "UPDATE mostly SET v = 'changed'",
      "VACUUM FULL rewritten",
      "DROP TABLE dropped",
      "CREATE TABLE created AS SELECT g AS id FROM generate_series(1, 10000) g",
      "CREATE TABLE in_ts TABLESPACE incr_ts AS SELECT g AS id FROM generate_series(1, 10000) g",
    ])
      await cluster.sql(statement);
    const after = {
      rewritten: await pathOf("rewritten"),
      created: await pathOf("created"),
    };
    expect(after.rewritten).not.toBe(before.rewritten);

    const incr = await backup("incr");
    incrId = incr.id;
    expect(incr.log).toMatch(new RegExp(`incremental, parent ${full.id}`));
    const m = await manifestOf(incr.id);
    expect(m).toMatchObject({ format: 2, type: "incr", parent: full.id, chain: [full.id] });
    expect({
      untouched: storedAs(fileIn(m, before.untouched)),
      accounts: storedAs(fileIn(m, before.accounts)),
      scratchInit: storedAs(fileIn(m, before.scratchInit)),
      grows: storedAs(fileIn(m, before.grows)),
      updated: storedAs(fileIn(m, before.updated)),
      rewrittenOld: storedAs(fileIn(m, before.rewritten)),
      rewrittenNew: storedAs(fileIn(m, after.rewritten)),
      dropped: storedAs(fileIn(m, before.dropped)),
      created: storedAs(fileIn(m, after.created)),
      control: storedAs(fileIn(m, "global/pg_control")),
      version: storedAs(fileIn(m, "PG_VERSION")),
    }).toEqual({
      untouched: "none",
      accounts: "none",
      scratchInit: "none",
      grows: "blocks",
      updated: "blocks",
      rewrittenOld: "absent",
      rewrittenNew: "whole",
      dropped: "absent",
      created: "whole",
      control: "whole",
      version: "none",
    });
    expect(fileIn(m, "PG_VERSION")?.from).toBe(full.id);
    // Most of its blocks changed: stored whole (--backup-incr-whole's default, 50), with
    // how many did, and every block this backup's.
    const mostly = fileIn(m, before.mostly) as BackupFileEntry;
    expect(mostly.stored).toBe("whole");
    expect(mostly.changed).toBeGreaterThanOrEqual(Math.ceil(mostly.size / 8192 / 2));
    expect([...decodeBlockMap(mostly, 2).from].every((i) => i === 1)).toBe(true);
    // The new tablespace's files are new: stored whole, with maps naming this backup.
    const tsOid = await cluster.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'incr_ts'");
    const inTs = m.files.filter((f) => f.part === tsOid && f.blocks);
    expect(inTs.length).toBeGreaterThan(0);
    for (const f of inTs) expect(storedAs(f)).toBe("whole");
    // Ten updated rows: a few blocks of the table, not the table.
    const updated = decodeBlockMap(fileIn(m, before.updated) as BackupFileEntry, 2);
    const changed = [...updated.from].filter((i) => i === 1).length;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(updated.from.length / 4);
    // Every file's size and sha256 are of the complete file, as in a full.
    expect(fileIn(m, before.accounts)?.sha256).toBe(fileIn(fullManifest, before.accounts)?.sha256);

    expect(m.storedBytes).toBeLessThan(fullManifest.storedBytes / 5);
    console.log(
      `incremental backups: full ${fullManifest.storedBytes} bytes stored in ${full.seconds}s (data ${full.dataSeconds}s), incr ${m.storedBytes} bytes in ${incr.seconds}s (data ${incr.dataSeconds}s); raw ${fullManifest.rawBytes} vs ${m.rawBytes}`,
    );

    const listed = await runPgha(["backup", "list", "--json"], { env, asServerUser: true });
    const rows = JSON.parse(listed.stdout) as { id: string; type: string; parent: string | null }[];
    expect(rows.map((r) => [r.id, r.type, r.parent])).toEqual([
      [full.id, "full", null],
      [incr.id, "incr", full.id],
    ]);
    const text = await runPgha(["backup", "list"], { env, asServerUser: true });
    expect(text.stdout.split("\n").find((l) => l.startsWith(incr.id))).toContain(
      `incr of ${full.id}`,
    );

    // The fetch assembles it from its chain (incr-restore; it refused, exit 11, before).
    const fetchDir = await serverOwnedTempDir("pgha-fetch-");
    cleanups.push(() => rm(fetchDir, { recursive: true, force: true }));
    const target = join(fetchDir, "data");
    const fetched = await runPgha(
      ["backup", "fetch", incr.id, target, "--tablespace-map", `incr_ts=${join(fetchDir, "ts")}`],
      {
        env,
        asServerUser: true,
      },
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(await readdir(target)).toEqual(expect.arrayContaining(["PG_VERSION", "global", "base"]));
  });

  it("a second incremental builds on the first: its maps name the backups that hold each block", async () => {
    const updatedPath = await pathOf("updated");
    await cluster.sql("UPDATE grows SET v = 'again' WHERE id % 10000 = 1");
    const second = await backup("incr");
    const m = await manifestOf(second.id);
    expect(m).toMatchObject({ format: 2, type: "incr", parent: incrId, chain: [fullId, incrId] });
    const updated = fileIn(m, updatedPath) as BackupFileEntry;
    expect(storedAs(updated)).toBe("none");
    // Stored whole by its parent, untouched since (its time too): the delta path, nothing.
    expect(storedAs(fileIn(m, await pathOf("mostly")))).toBe("none");
    const from = new Set(decodeBlockMap(updated, 3).from);
    expect(from).toEqual(new Set([0, 1])); // the full's blocks and the first increment's
    expect(storedAs(fileIn(m, await pathOf("grows")))).toBe("blocks");
    expect(storedAs(fileIn(m, await pathOf("created")))).toBe("none");
    expect(fileIn(m, await pathOf("created"))?.blocks).toBeDefined();
  });

  it("--backup-max-incr: the chain's next backup is a full", async () => {
    const next = await backup("incr", { PGHA_BACKUP_MAX_INCR: "2" });
    expect(next.log).toMatch(
      /the chain of \S+ has 2 increments, the most --backup-max-incr allows is 2/,
    );
    expect(await manifestOf(next.id)).toMatchObject({ type: "full", chain: [], format: 1 });
  });

  it("a differential builds on the newest full alone, and restores after the increments between are gone", async () => {
    // The newest backup is the full the last test took.
    const [newestFull] = (
      await runPgha(["backup", "list", "--json"], { env, asServerUser: true }).then((r) =>
        JSON.parse(r.stdout),
      )
    )
      .filter((b: { type: string }) => b.type === "full")
      .map((b: { id: string }) => b.id)
      .reverse();
    await cluster.sql("UPDATE grows SET v = 'incr3' WHERE id % 1000 = 3");
    const incr = await backup("incr");
    expect(await manifestOf(incr.id)).toMatchObject({ parent: newestFull });
    await cluster.sql("UPDATE untouched SET v = 'diff' WHERE id % 5000 = 4");
    // The increment's manifest damaged: not the differential's parent, passed over.
    const manifestFile = (id: string) =>
      join(env.PGHA_REPO as string, "v1", "clusters", "main", "backups", id, "manifest.json");
    const incrManifest = await readFile(manifestFile(incr.id));
    await writeFile(manifestFile(incr.id), "not a manifest");
    const diff = await backup("diff");
    expect(diff.log).toMatch(
      new RegExp(`backup ${incr.id}'s manifest cannot be read .*passed over`),
    );
    expect(diff.log).toMatch(new RegExp(`differential, parent ${newestFull}`));
    // The newest backup's manifest damaged: an incremental is taken as a full, and says why.
    const diffManifest = await readFile(manifestFile(diff.id));
    await writeFile(manifestFile(diff.id), "not a manifest");
    const instead = await backup("incr");
    expect(instead.log).toMatch(
      new RegExp(
        `taking a full backup instead of an incremental one: the manifest of the newest backup, ${diff.id}, cannot be read`,
      ),
    );
    expect(await manifestOf(instead.id)).toMatchObject({ type: "full" });
    await writeFile(manifestFile(incr.id), incrManifest);
    await writeFile(manifestFile(diff.id), diffManifest);
    const m = await manifestOf(diff.id);
    expect(m).toMatchObject({ type: "incr", parent: newestFull, chain: [newestFull] });
    // It holds the increment's change too: every change since the full.
    for (const table of ["grows", "untouched"]) {
      const entry = fileIn(m, await pathOf(table)) as BackupFileEntry;
      expect(storedAs(entry), table).not.toBe("none");
      expect(new Set(decodeBlockMap(entry, 2).from), table).toEqual(new Set([0, 1]));
    }
    const deleted = await runPgha(["backup", "delete", incr.id, "--confirm"], {
      env,
      asServerUser: true,
    });
    expect(deleted.code, deleted.stderr).toBe(0);
    const digest = "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM";
    const want = [await cluster.sql(`${digest} grows`), await cluster.sql(`${digest} untouched`)];
    const tsDir = await serverOwnedTempDir("pgha-diff-ts-");
    cleanups.push(() => rm(tsDir, { recursive: true, force: true }));
    const restored = await restoreAndStart(diff.id, env, [
      "--tablespace-map",
      `incr_ts=${join(tsDir, "ts")}`,
    ]);
    try {
      expect([
        await restored.sql(`${digest} grows`),
        await restored.sql(`${digest} untouched`),
      ]).toEqual(want);
    } finally {
      await restored.destroy();
    }
  });

  it("after a promotion (a new timeline), an incremental is taken as a full", async () => {
    await cluster.stop();
    const promoted = await restoreAndStart(fullId, env);
    cleanups.push(() => promoted.destroy());
    await promoted.stop();
    // The promoted copy archives into the same repository and cluster: a failover.
    await promoted.appendConf([
      "archive_mode = on",
      `archive_command = '${pghaCommandLine("wal-push %p").replace(/'/g, "''")}'`,
    ]);
    await promoted.start();
    const promotedEnv = { ...env, ...promoted.connEnv() };
    expect(await promoted.sql("SELECT timeline_id FROM pg_control_checkpoint()")).not.toBe("1");
    const started = Date.now();
    const taken = await runPgha(["backup", "--fast", "--type", "incr"], {
      env: { ...promotedEnv, PGHA_LOG_LEVEL: "info" },
      asServerUser: true,
    });
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.stderr).toMatch(/timeline 1, the server on \d+: a new timeline starts a new full/);
    const m = await manifestOf(taken.stdout.trim());
    expect(m.type).toBe("full");
    expect(m.timeline).toBeGreaterThan(1);
    // And the next incremental on the new timeline builds on that full.
    const next = await runPgha(["backup", "--fast", "--type", "incr"], {
      env: promotedEnv,
      asServerUser: true,
    });
    expect(next.code, next.stderr).toBe(0);
    expect(await manifestOf(next.stdout.trim())).toMatchObject({ type: "incr", parent: m.id });
    console.log(
      `timeline switch: full on timeline ${m.timeline} in ${(Date.now() - started) / 1000}s`,
    );
  });
});
