/**
 * Point-in-time recovery end to end on a real PostgreSQL 15, with the local repository
 * and the S3 test server: a time target around a DROP TABLE; a promoted copy that archives
 * timeline 2 and a restore that follows it; LSN, xid and restore-point targets; a delayed
 * standby; target times the archive cannot reach (past its newest WAL, in the future, past
 * a timeline's end), refused; and a WAL gap that is refused before anything is downloaded.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { openStore } from "../../src/storage/open-store.js";
import { parseSegmentFileName, parseWalFileName } from "../../src/wal/names.js";
import { archivedWalKeys, openTestStore } from "../helpers/archived-wal.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PgCluster, serverOwnedTempDir } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!pg).each(repoKinds(server))("restore with a %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  const clusters: PgCluster[] = [];

  /** Switches WAL on a server and waits until the segment is in the archive. */
  async function archiveNow(cluster: PgCluster): Promise<void> {
    const name = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
    for (let i = 0; i < 240; i++) {
      const done = await cluster.sql(
        "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
      );
      if (done >= name) return;
      await sleep(250);
    }
    throw new Error(`segment ${name} was not archived: ${await cluster.serverLog()}`);
  }

  /** pgha restore into a new directory, then start the copy there. */
  async function restoreTo(args: string[], expectPromoted = true): Promise<PgCluster> {
    const parent = await serverOwnedTempDir("pgha-pitr-");
    const dataDir = join(parent, "data");
    const restored = await runPgha(["restore", "--pgdata", dataDir, ...args], {
      env,
      asServerUser: true,
    });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/pg_ctl -D .* start/);
    const copy = await PgCluster.adopt(dataDir, { env });
    copy.removeAlso.push(parent);
    clusters.push(copy);
    await copy.start().catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await copy.serverLog()}`);
    });
    if (expectPromoted) await copy.waitPromoted();
    return copy;
  }

  beforeAll(async () => {
    ({ repo, cluster: primary, env } = await archivingCluster(kind, server));
    await primary.sql("CREATE TABLE t (id int, note text)");
    const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
  });

  afterAll(async () => {
    for (const c of clusters) await c.destroy().catch(() => undefined);
    await primary?.destroy();
    await repo?.cleanup();
  });

  it("restores to the second before a DROP TABLE: the table is back, later rows are absent", async () => {
    await primary.sql("INSERT INTO t VALUES (1, 'before')");
    await sleep(1100);
    const target = await primary.sql(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    await sleep(1100);
    await primary.sql("INSERT INTO t VALUES (2, 'after')");
    await primary.sql("DROP TABLE t");
    await archiveNow(primary);

    const planned = await runPgha(["restore", "plan", "--target-time", target, "--json"], {
      env,
      asServerUser: true,
    });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout);
    expect(plan.gaps).toEqual([]);
    expect(plan.settings).toMatchObject({
      recovery_target_time: target.replace("T", " ").replace("Z", "+00:00"),
      recovery_target_action: "pause",
    });
    expect(plan.settings.restore_command).toMatch(/wal-fetch .* %f %p$/);

    const copy = await restoreTo([
      "--target-time",
      target,
      "--target-action",
      "promote",
      "--no-archive",
    ]);
    expect(await copy.sql("SELECT string_agg(id || ':' || note, ',') FROM t")).toBe("1:before");
  });

  // Before any copy is promoted: a standby follows the archive's latest timeline.
  it("builds a delayed standby that shows a new row only after the delay", async () => {
    const parent = await serverOwnedTempDir("pgha-standby-");
    const dataDir = join(parent, "data");
    const conninfo = `host=${primary.socketDir} port=${primary.port} user=postgres`;
    const built = await runPgha(
      ["standby", "--pgdata", dataDir, "--primary-conninfo", conninfo, "--delay", "4s"],
      {
        env,
        asServerUser: true,
      },
    );
    expect(built.code, built.stderr).toBe(0);
    const standby = await PgCluster.adopt(dataDir, { env });
    standby.removeAlso.push(parent);
    clusters.push(standby);
    await standby.start();
    await primary.sql("CREATE TABLE IF NOT EXISTS s (id int)");
    for (
      let i = 0;
      i < 60 && (await standby.sql("SELECT to_regclass('s') IS NOT NULL").catch(() => "f")) !== "t";
      i++
    ) {
      await sleep(500);
    }
    expect(await standby.sql("SELECT pg_is_in_recovery()")).toBe("t");
    await primary.sql("INSERT INTO s VALUES (42)");
    await sleep(1500);
    expect(await standby.sql("SELECT count(*) FROM s")).toBe("0");
    let seen = "0";
    for (let i = 0; i < 40 && seen === "0"; i++) {
      await sleep(250);
      seen = await standby.sql("SELECT count(*) FROM s");
    }
    expect(seen).toBe("1");
    await standby.stop();
  });

  // Also before any copy is promoted. No primary at all: restore_command alone.
  it("builds an archive-only standby that replays a row once its segment is archived", async () => {
    const parent = await serverOwnedTempDir("pgha-standby-");
    const dataDir = join(parent, "data");
    const built = await runPgha(["standby", "--pgdata", dataDir], { env, asServerUser: true });
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toMatch(/follows the repository alone/);
    const standby = await PgCluster.adopt(dataDir, {
      env,
      // Poll the archive every second instead of every 5 s: the test waits less.
      conf: ["wal_retrieve_retry_interval = '1s'"],
    });
    standby.removeAlso.push(parent);
    clusters.push(standby);
    await standby.start();
    expect(await standby.sql("SHOW primary_conninfo")).toBe("");
    await primary.sql("CREATE TABLE archive_only AS SELECT 7 AS id");
    await archiveNow(primary);
    let seen = "";
    for (let i = 0; i < 120 && seen !== "7"; i++) {
      await sleep(250);
      seen = await standby
        .sql("SELECT coalesce((SELECT string_agg(id::text, ',') FROM archive_only), '')")
        .catch(() => "");
    }
    expect(seen).toBe("7");
    expect(await standby.sql("SELECT pg_is_in_recovery()")).toBe("t");
    expect(await standby.sql("SELECT count(*) FROM pg_stat_wal_receiver")).toBe("0");
    await standby.stop();
  });

  it("follows a new timeline: a promoted copy archives timeline 2, and a restore gets its writes", async () => {
    // Restored to the end of the archive, the copy promotes to timeline 2 and archives into the repository.
    const copy = await restoreTo(["--archive"]);
    expect(await copy.sql("SELECT timeline_id FROM pg_control_checkpoint()")).toMatch(/^[2-9]$/);
    await copy.sql("CREATE TABLE on_tl2 AS SELECT g FROM generate_series(1, 100) g");
    await archiveNow(copy);
    const timeline = await copy.sql("SELECT timeline_id FROM pg_control_checkpoint()");
    await copy.stop();

    const planned = await runPgha(["restore", "plan", "--json"], { env, asServerUser: true });
    const plan = JSON.parse(planned.stdout);
    expect(plan.targetTimeline).toBe(Number(timeline));
    expect(plan.path.map((s: { timeline: number }) => s.timeline)).toEqual([1, Number(timeline)]);
    const again = await restoreTo(["--no-archive"]);
    expect(await again.sql("SELECT count(*) FROM on_tl2")).toBe("100");
  });

  it("restores to an LSN, a transaction id and a restore point", async () => {
    await primary.sql("CREATE TABLE u (id int)");
    await primary.sql("INSERT INTO u VALUES (1)");
    const lsn = await primary.sql("SELECT pg_current_wal_insert_lsn()");
    await primary.sql("INSERT INTO u VALUES (2)");
    const xid = await primary.sql(
      "BEGIN; INSERT INTO u VALUES (3); SELECT txid_current(); COMMIT;",
    );
    await primary.sql("INSERT INTO u VALUES (4)");
    await primary.sql("SELECT pg_create_restore_point('before_five')");
    await primary.sql("INSERT INTO u VALUES (5)");
    await archiveNow(primary);
    // Timeline 2 branched off earlier: these targets are on timeline 1.
    const common = ["--target-timeline", "1", "--target-action", "promote", "--no-archive"];
    const rows = async (copy: PgCluster) =>
      copy.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM u");
    expect(await rows(await restoreTo(["--target-lsn", lsn, ...common]))).toBe("1");
    expect(
      await rows(
        await restoreTo([
          "--target-xid",
          xid.split("\n").find((l) => /^\d+$/.test(l)) ?? xid,
          ...common,
        ]),
      ),
    ).toBe("1,2,3");
    expect(await rows(await restoreTo(["--target-name", "before_five", ...common]))).toBe(
      "1,2,3,4",
    );
  });

  // Issue 12, point 1. Timeline 2 (the promoted copy, stopped) ended before timeline 1.
  it("refuses a target time the archive cannot reach: past the newest archived WAL, in the future, past a timeline's end", async () => {
    const plan = async (args: string[]) => {
      const run = await runPgha(["restore", "plan", ...args, "--json"], {
        env,
        asServerUser: true,
      });
      return { ...run, json: run.stdout === "" ? undefined : JSON.parse(run.stdout) };
    };
    const tl1 = await plan(["--target-timeline", "1"]);
    const tl2 = await plan([]);
    expect(tl1.code, tl1.stderr).toBe(0);
    expect(tl2.code, tl2.stderr).toBe(0);
    // Pushed by pgha on the database's clock: the bound of every archived commit.
    expect(tl1.json.archiveEnd).toMatchObject({ timeline: 1, clock: "database" });
    expect(tl1.json.archiveEnd.segment).toBe(
      await primary.sql("SELECT last_archived_wal FROM pg_stat_archiver"),
    );
    const end1 = tl1.json.archiveEnd.time as string;
    const end2 = tl2.json.archiveEnd.time as string;
    expect(Date.parse(end2)).toBeLessThan(Date.parse(end1));

    // Archiving stops; rows are written into a switched and into the current segment.
    await primary.sql("ALTER SYSTEM SET archive_command = 'false'");
    await primary.sql("SELECT pg_reload_conf()");
    await primary.sql("CREATE TABLE unarchived AS SELECT 1 AS x");
    await primary.sql("SELECT pg_switch_wal()");
    await primary.sql("INSERT INTO unarchived VALUES (2)");
    await sleep(1100);
    const now = await primary.sql(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    try {
      for (const target of [now, "-1s"]) {
        const past = await plan(["--target-timeline", "1", "--target-time", target]);
        expect(past.code, past.stderr).toBe(11);
        expect(past.stderr).toContain(`the newest restorable time on timeline 1 is before ${end1}`);
        expect(past.json).toMatchObject({ restorable: false, archiveEnd: tl1.json.archiveEnd });
      }
      // Between the ends of the two timelines: on timeline 1 only.
      const between = new Date((Date.parse(end1) + Date.parse(end2)) / 2).toISOString();
      const onTl2 = await plan(["--target-time", between]);
      expect(onTl2.code).toBe(11);
      expect(onTl2.stderr).toContain(`the newest restorable time on timeline 2 is before ${end2}`);
      expect((await plan(["--target-timeline", "1", "--target-time", between])).code).toBe(0);

      const future = await plan(["--target-time", new Date(Date.now() + 3_600_000).toISOString()]);
      expect(future.code).toBe(11);
      expect(future.stderr).toMatch(/it is in the future/);
      // Bad input: one line, exit 2, before the repository is read.
      const empty = await plan(["--target-name", ""]);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toMatch(/--target-name is empty/);
      const impossible = await plan(["--target-time", "2026-02-30T10:00:00Z"]);
      expect(impossible.code).toBe(2);
      expect(impossible.stderr).toMatch(/is not a real time: 2026-02 has no day 30/);
    } finally {
      await primary.sql("ALTER SYSTEM RESET archive_command");
      await primary.sql("SELECT pg_reload_conf()");
    }
  });

  // Issue 13, point 3: verify on the sound repository (before the next tests damage it).
  it("verify finds nothing wrong in the sound repository but warns that timeline 1 went on after the branch", async () => {
    const verified = await runPgha(["verify"], { env, asServerUser: true });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).not.toMatch(/^ERROR/m);
    expect(verified.stdout).toMatch(
      /^WARNING wal-fork: timeline 1 goes on past where timeline \d+ branched off/m,
    );
    expect(verified.stdout).toMatch(/verify of cluster 'main': ok, 1 warning/);
    const listed = await runPgha(["backup", "list", "--json"], { env, asServerUser: true });
    expect(JSON.parse(listed.stdout)[0]).toMatchObject({
      restorable: true,
      gaps: [],
      lastVerified: { ok: true },
    });
  });

  it("reports a WAL gap in the plan and refuses the restore before downloading anything", async () => {
    const listed = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    const backup = listed[0];
    const start = parseSegmentFileName(backup.startWal);
    if (!start) throw new Error("bad wal");
    const store = await openStore(
      resolveConfig({ flags: {}, env, file: undefined }),
      memoryLogger(),
    );
    const next = parseWalFileName(
      `${backup.startWal.slice(0, 16)}${(start.seg + 1).toString(16).toUpperCase().padStart(8, "0")}`,
    );
    if (!next) throw new Error("bad wal");
    for (const key of await archivedWalKeys(store, next.name)) await store.delete(key);

    const planned = await runPgha(["restore", "plan", "--target-timeline", "1"], {
      env,
      asServerUser: true,
    });
    expect(planned.code).toBe(11);
    expect(planned.stderr).toContain(next.name);
    // With --json the refusal is a document too: the reasons and every missing segment.
    const json = await runPgha(["restore", "plan", "--target-timeline", "1", "--json"], {
      env,
      asServerUser: true,
    });
    expect(json.code).toBe(11);
    const refusal = JSON.parse(json.stdout);
    expect(refusal.restorable).toBe(false);
    expect(refusal.gaps).toContain(next.name);
    expect(refusal.reasons.join(" ")).toMatch(/missing between backup/);
    // The refusal and the error object, once: the same kind and exit code as the command's.
    expect(refusal.error).toMatchObject({ kind: "unrestorable", exitCode: 11 });
    const target = join(await serverOwnedTempDir("pgha-gap-"), "data");
    const refused = await runPgha(["restore", "--pgdata", target, "--target-timeline", "1"], {
      env,
      asServerUser: true,
    });
    expect(refused.code).toBe(11);
    await expect(readdir(target)).rejects.toThrow();
  });

  // Issue 13, point 3. After the previous test deleted the segment after the backup's start.
  it("verify names a deleted WAL segment and a corrupted backup object; backup list marks the backup", async () => {
    const listed = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    const backup = listed[0];
    const store = await openTestStore(env);
    // Its first segment goes too: the backup itself cannot be restored any more.
    for (const key of await archivedWalKeys(store, backup.startWal)) await store.delete(key);
    const info = JSON.parse(
      (await runPgha(["backup", "info", backup.id, "--json"], { env, asServerUser: true })).stdout,
    );
    const object = info.objects[0].key as string;
    await repo.corrupt(object);

    const verified = await runPgha(["verify"], { env, asServerUser: true });
    expect(verified.code, verified.stderr).toBe(6);
    const lines = verified.stdout.split("\n");
    const gap = lines.find((l) => l.startsWith("ERROR wal-gap:"));
    expect(gap).toContain(backup.startWal);
    expect(lines).toContainEqual(expect.stringMatching(/^ERROR checksum: .* is corrupt/));
    expect(lines.find((l) => l.startsWith("ERROR checksum:"))).toContain(object);
    expect(verified.stdout).toContain(`ERROR unrestorable: backup ${backup.id} cannot be restored`);
    // One backup alone, as JSON: the same findings, named.
    const one = await runPgha(["verify", "--backup", backup.id, "--json"], {
      env,
      asServerUser: true,
    });
    expect(one.code).toBe(6);
    const report = JSON.parse(one.stdout);
    expect(report.findings).toContainEqual(
      expect.objectContaining({ kind: "checksum", object, backup: backup.id }),
    );
    expect(report.backups).toEqual([
      expect.objectContaining({ id: backup.id, ok: false, restorable: false }),
    ]);

    const after = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(after[0]).toMatchObject({
      id: backup.id,
      restorable: false,
      lastVerified: { ok: false },
    });
    expect(after[0].gaps).toContain(backup.startWal);
    const text = await runPgha(["backup", "list"], { env, asServerUser: true });
    expect(text.stdout).toMatch(/restorable\s+verified/);
    expect(text.stdout.split("\n").find((l) => l.startsWith(backup.id))).toMatch(
      /NO: \d+ WAL segments? missing\s+\S+ FAILED/,
    );
  });
});
