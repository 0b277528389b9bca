/**
 * pgha status and pgha metrics on a real PostgreSQL 15 archiving into each repository
 * kind: the RPO and the window after a backup, the server's archiver facts, metrics that
 * parse (printed and as a textfile); then archiving breaks (archive_command fails) and
 * --max-rpo fails with one line naming the breach.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import type { PgCluster } from "../helpers/pg-cluster.js";
import { serverOwnedTempDir } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { parsePromText } from "../helpers/prom-text.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

describe.skipIf(!pg).each(repoKinds(server))("status with a %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  const status = async (args: string[] = []) =>
    runPgha(["status", ...args], { env, asServerUser: true });

  beforeAll(async () => {
    ({ repo, cluster: primary, env } = await archivingCluster(kind, server, { backup: true }));
    const before = await primary.sql("SELECT archived_count FROM pg_stat_archiver");
    await primary.sql("CREATE TABLE t AS SELECT 1 AS x; SELECT pg_switch_wal()");
    // Archived: the server says so once archive_command (wal-push) returned 0.
    for (let i = 0; i < 100; i++) {
      const archived = await primary.sql(
        `SELECT archived_count > ${before} AND last_archived_wal !~ 'backup' FROM pg_stat_archiver`,
      );
      if (archived === "t") break;
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    await primary?.destroy();
    await repo?.cleanup();
  });

  it("shows the RPO, the window and the server's archiver while archiving works", async () => {
    const got = await status(["--json", "--max-rpo", "10m", "--max-backup-age", "1h"]);
    expect(got.code, got.stderr).toBe(0);
    const s = JSON.parse(got.stdout);
    const backups = JSON.parse((await runPgha(["backup", "list", "--json"], { env })).stdout);
    expect(s.lastArchived).toMatchObject({ clock: "database", timeline: 1 });
    expect(s.lastArchived.ageSeconds).toBeLessThan(120);
    expect(s.timelines).toHaveLength(1);
    expect(s.timelines[0]).toMatchObject({ timeline: 1, start: backups[0].stopTime, gaps: [] });
    expect(Date.parse(s.timelines[0].end)).toBeGreaterThan(Date.parse(backups[0].stopTime));
    expect(s.lastBackup).toMatchObject({ id: backups[0].id, restorable: true });
    expect(s.repositoryBytes.wal).toBeGreaterThan(0);
    expect(s.repositoryBytes.backups).toBeGreaterThan(0);
    expect(s.server.reachable).toBe(true);
    expect(s.server.archiver.failedCount).toBe(0);
    expect(s.server.ready.files).toBeGreaterThanOrEqual(0);
    expect(s.breaches).toEqual([]);

    const text = await status();
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`last archived WAL  ${s.lastArchived.name}, pushed`);
    expect(text.stdout).toMatch(/timeline 1 +restorable from \S+ to just before \S+, no gaps/);
    expect(text.stdout).not.toContain("| now"); // not a terminal: no bar
  });

  it("prints metrics that parse, and writes them as a textfile", async () => {
    const printed = await runPgha(["metrics"], { env, asServerUser: true });
    expect(printed.code, printed.stderr).toBe(0);
    const families = parsePromText(printed.stdout);
    const value = (name: string) => families.get(name)?.samples[0]?.value;
    expect(value("pgha_wal_last_archived_age_seconds")).toBeLessThan(120);
    expect(value("pgha_pitr_window_end_timestamp_seconds")).toBeGreaterThan(
      value("pgha_pitr_window_start_timestamp_seconds") ?? Number.POSITIVE_INFINITY,
    );
    expect(value("pgha_backups")).toBe(1);
    expect(value("pgha_server_up")).toBe(1);

    const dir = await serverOwnedTempDir("pgha-textfile-");
    try {
      const written = await runPgha(["metrics", "--textfile", dir], { env, asServerUser: true });
      expect(written.code, written.stderr).toBe(0);
      expect(await readdir(dir)).toEqual(["pgha-main.prom"]);
      const file = parsePromText(await readFile(join(dir, "pgha-main.prom"), "utf8"));
      expect(file.get("pgha_backups")?.samples[0]?.value).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fails --max-rpo with one line when archiving is broken", async () => {
    await primary.sql("ALTER SYSTEM SET archive_command = 'false'");
    await primary.sql("SELECT pg_reload_conf()");
    await new Promise((r) => setTimeout(r, 500));
    await primary.sql("INSERT INTO t VALUES (2); SELECT pg_switch_wal()");
    for (let i = 0; i < 100; i++) {
      if ((await primary.sql("SELECT failed_count > 0 FROM pg_stat_archiver")) === "t") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 2100));
    const got = await status(["--max-rpo", "2s", "--json"]);
    expect(got.code, got.stderr).toBe(14);
    const lines = got.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^pgha: breach: cluster 'main': RPO \S+ is over --max-rpo 2s: /);
    const s = JSON.parse(got.stdout);
    expect(s.server.archiver.failedCount).toBeGreaterThan(0);
    expect(s.server.ready.files).toBeGreaterThanOrEqual(1);
    const metrics = parsePromText((await runPgha(["metrics"], { env, asServerUser: true })).stdout);
    expect(metrics.get("pgha_archive_failed_total")?.samples[0]?.value).toBeGreaterThan(0);
    expect(metrics.get("pgha_archive_ready_files")?.samples[0]?.value).toBeGreaterThanOrEqual(1);
  });
});
