/**
 * Restore drills end to end on a real PostgreSQL 15: a drill to a relative time passes
 * and is stored; a failing check fails it; SIGTERM stops its scratch server and removes
 * its directory; a WAL gap fails it with the gap named.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { openStore } from "../../src/storage/open-store.js";
import { parseSegmentFileName, parseWalFileName } from "../../src/wal/names.js";
import { archivedWalKeys } from "../helpers/archived-wal.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { type PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { PGHA_BIN, runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

/** The command lines of running processes that mention text. */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replace(/\0/g, " ")}`);
  }
  return found;
}

describe.skipIf(!pg).each(repoKinds(server))("drills with a %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  let checks: string;
  let between: string;

  beforeAll(async () => {
    ({ repo, cluster: primary, env } = await archivingCluster(kind, server));
    await primary.sql("CREATE TABLE accounts AS SELECT g AS id FROM generate_series(1, 500) g");
    const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
    await primary.sql("INSERT INTO accounts VALUES (501)");
    await new Promise((r) => setTimeout(r, 1100));
    between = await primary.sql(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    await new Promise((r) => setTimeout(r, 1100));
    // Later commits on later segments: a target time needs a commit after it, and the gap
    // test needs segments after the one it removes.
    for (let i = 0; i < 3; i++)
      await primary.sql("INSERT INTO later VALUES (1); SELECT pg_switch_wal()").catch(async () => {
        await primary.sql("CREATE TABLE later (x int); SELECT pg_switch_wal()");
      });
    await new Promise((r) => setTimeout(r, 2000));
    const dir = await serverOwnedTempDir("pgha-checks-");
    checks = join(dir, "checks.sql");
    await writeFile(
      checks,
      "-- the drill's own checks\nSELECT count(*) = 501 FROM accounts;\nSELECT id FROM accounts WHERE id = 1;\n",
    );
  });

  afterAll(async () => {
    await primary?.destroy();
    await repo?.cleanup();
  });

  it("passes, reports phase times and is listed", async () => {
    const drilled = await runPgha(
      ["drill", "--target-time", between, "--check-sql", checks, "--json"],
      { env, asServerUser: true },
    );
    expect(drilled.code, drilled.stderr).toBe(0);
    const report = JSON.parse(drilled.stdout);
    expect(report.passed).toBe(true);
    expect(report.checks.map((c: { name: string }) => c.name)).toEqual([
      "connect",
      "promoted",
      "target",
      "sql 1",
      "sql 2",
    ]);
    expect(report.phases.total).toBeGreaterThan(0);
    expect(report.phases.fetch).toBeGreaterThan(0);
    expect(report.lastReplayedCommit).not.toBeNull();
    const listed = JSON.parse(
      (await runPgha(["drill", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(listed.map((r: { id: string }) => r.id)).toContain(report.id);
  });

  it("fails when a check does not hold", async () => {
    const bad = checks.replace("checks.sql", "bad.sql");
    await writeFile(bad, "SELECT count(*) = 12345 FROM accounts;\n");
    const drilled = await runPgha(["drill", "--check-sql", bad], { env, asServerUser: true });
    expect(drilled.code).toBe(12);
    expect(drilled.stdout).toMatch(
      /FAILED\s+sql 1: SELECT count\(\*\) = 12345 FROM accounts -> false/,
    );
  });

  // The local repository only: the cleanup does not depend on the store.
  it.skipIf(kind !== "local")(
    "stops its scratch server and removes its directory on SIGTERM, then exits 143",
    async () => {
      const tmp = await serverOwnedTempDir("pgha-drill-tmp-");
      const slow = join(tmp, "slow.sql");
      await writeFile(slow, "SELECT pg_sleep(120) IS NOT NULL;\n", { mode: 0o644 });
      const clean: Record<string, string> = {};
      for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
      // TMPDIR: the scratch directory is made there, where this test can find it.
      const child = spawn(PGHA_BIN, ["drill", "--check-sql", slow], {
        env: { ...process.env, ...clean, PGHA_NODE: process.execPath, ...env, TMPDIR: tmp },
        stdio: ["ignore", "pipe", "pipe"],
        ...(serverUser() ?? {}),
      });
      let output = "";
      child.stdout.on("data", (d) => {
        output += d;
      });
      child.stderr.on("data", (d) => {
        output += d;
      });
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.on("close", (code, signal) => resolve({ code, signal })),
      );
      // Up: the postmaster says so in its pid file ("ready" once promoted).
      let scratch: string | undefined;
      for (let i = 0; i < 600 && scratch === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        for (const name of (await readdir(tmp)).filter((n) => n.startsWith("pgha-drill-"))) {
          const pid = await readFile(join(tmp, name, "data", "postmaster.pid"), "utf8").catch(
            () => "",
          );
          if (/\bready\b/.test(pid)) scratch = join(tmp, name);
        }
      }
      expect(scratch, output).toBeDefined();
      expect(await processesMentioning(scratch as string)).not.toEqual([]);
      child.kill("SIGTERM");
      const result = await exited;
      expect(result, output).toEqual({ code: 143, signal: null });
      expect(existsSync(scratch as string)).toBe(false);
      expect(await processesMentioning(scratch as string)).toEqual([]);
      const reports = JSON.parse(
        (await runPgha(["drill", "list", "--json"], { env, asServerUser: true })).stdout,
      );
      expect(reports.at(-1)).toMatchObject({ passed: false, error: "interrupted by SIGTERM" });
    },
  );

  it.skipIf(kind !== "local")(
    "exits with a storage failure's own code (7), not the drill's (12)",
    async () => {
      // A bundle the server user cannot read: the fetch fails as the storage refusing access.
      const dir = repo.dir as string;
      const store = await openStore(
        resolveConfig({ flags: {}, env, file: undefined }),
        memoryLogger(),
      );
      let bundle: string | undefined;
      for await (const entry of store.list("v1/clusters/main/backups/"))
        if (entry.key.endsWith(".tar")) bundle ??= join(dir, entry.key);
      if (!bundle) throw new Error("no bundle");
      await chmod(bundle, 0o000);
      try {
        const drilled = await runPgha(["drill", "--latest"], { env, asServerUser: true });
        expect(drilled.code, drilled.stderr).toBe(7); // was 12: the kind came from the text
        expect(drilled.stderr).toMatch(/permission denied/);
      } finally {
        await chmod(bundle, 0o600);
      }
    },
  );

  it("of a cluster the repository does not hold: exit 13 naming its clusters, and no report", async () => {
    const drilled = await runPgha(["drill", "--latest", "--cluster", "mian"], {
      env,
      asServerUser: true,
    });
    expect(drilled.code, drilled.stderr).toBe(13);
    expect(drilled.stderr).toMatch(/holds no cluster 'mian'/);
    expect(drilled.stderr).toMatch(/HINT: its clusters: main /);
    // Its report would have made the typo a cluster of the repository.
    const listed = await runPgha(["backup", "list", "--cluster", "mian"], {
      env,
      asServerUser: true,
    });
    expect(listed.code).toBe(13);
  });

  it("fails with the gap named when WAL is missing", async () => {
    const listed = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    const start = parseSegmentFileName(listed[0].startWal);
    if (!start) throw new Error("bad start wal");
    const store = await openStore(
      resolveConfig({ flags: {}, env, file: undefined }),
      memoryLogger(),
    );
    const missing = parseWalFileName(
      `${listed[0].startWal.slice(0, 16)}${(start.seg + 1).toString(16).toUpperCase().padStart(8, "0")}`,
    );
    if (!missing) throw new Error("bad wal");
    for (const key of await archivedWalKeys(store, missing.name)) await store.delete(key);
    const drilled = await runPgha(["drill", "--latest"], { env, asServerUser: true });
    expect(drilled.code).toBe(11);
    expect(drilled.stderr).toContain(missing.name);
    const reports = JSON.parse(
      (await runPgha(["drill", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(reports.at(-1)).toMatchObject({ passed: false });
    expect(reports.at(-1).error).toContain(missing.name);
  });
});

describe.skipIf(!pg)("a drill of a cluster with a tablespace", () => {
  it("restores the tablespace inside its scratch directory, leaving the original location alone", async () => {
    const setup = await archivingCluster("local", null);
    const location = await serverOwnedTempDir("pgha-drill-ts-");
    try {
      await setup.cluster.sql(`CREATE TABLESPACE extra LOCATION '${location}'`);
      await setup.cluster.sql("CREATE TABLE far TABLESPACE extra AS SELECT 1 AS x");
      const taken = await runPgha(["backup", "--fast"], { env: setup.env, asServerUser: true });
      expect(taken.code, taken.stderr).toBe(0);
      const before = await readdir(location, { recursive: true });
      // On the cluster's own host the original location is in use: a drill must not need it.
      const drilled = await runPgha(["drill", "--immediate"], {
        env: setup.env,
        asServerUser: true,
      });
      expect(drilled.code, drilled.stderr).toBe(0);
      expect(await readdir(location, { recursive: true })).toEqual(before);
    } finally {
      await setup.destroy();
      await rm(location, { recursive: true, force: true });
    }
  }, 120_000);
});
