/**
 * The scheduler for real: per-second jobs perform a backup, a dump, a prune and a drill
 * on a test cluster; the drill passes; --metrics-listen serves metrics that parse; SIGTERM
 * stops the daemon cleanly.
 */
import { spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { havePostgres } from "../helpers/components.js";
import { freePort, PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { PGHA_ENTRY, runPgha } from "../helpers/pgha.js";
import { parsePromText } from "../helpers/prom-text.js";
import { archiveConf } from "../helpers/restore.js";

const pg = havePostgres();

describe.skipIf(!pg)("pgha schedule run", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it("runs backup, dump, prune and drill jobs on their schedule and stops on SIGTERM", async () => {
    const repo = await serverOwnedTempDir("pgha-repo-");
    cleanups.push(() => rm(repo, { recursive: true, force: true }));
    let env: Record<string, string> = {
      PGHA_REPO: repo,
      PGHA_CLUSTER: "main",
      PGHA_ARCHIVE_TIMEOUT: "60s",
    };
    const cluster = await PgCluster.init({ env, conf: archiveConf() });
    cleanups.push(() => cluster.destroy());
    await cluster.start();
    env = { ...env, ...cluster.connEnv(), PGHA_SCHEDULE_GRACE: "60s" };
    await cluster.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g");
    const config = join(repo, "..", `${repo.split("/").pop()}-pgha.json`);
    await writeFile(
      config,
      JSON.stringify({
        jobs: [
          {
            name: "backup",
            cron: "*/5 * * * * *",
            zone: "Europe/Brussels",
            run: "backup",
            args: ["--fast"],
          },
          { name: "dump", cron: "2/5 * * * * *", zone: "UTC", run: "dump" },
          {
            name: "prune",
            cron: "3/10 * * * * *",
            zone: "UTC",
            run: "prune",
            args: ["--confirm", "--keep-last", "2", "--pitr-window", "1h"],
          },
          { name: "drill", cron: "4/10 * * * * *", zone: "UTC", run: "drill", args: ["--latest"] },
        ],
      }),
      { mode: 0o644 },
    );
    cleanups.push(() => rm(config, { force: true }));

    const user = serverUser();
    const clean: Record<string, string> = {};
    for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
    const port = await freePort();
    const args = ["schedule", "run", "--config", config, "--metrics-listen", `127.0.0.1:${port}`];
    const daemon = spawn(process.execPath, [PGHA_ENTRY, ...args], {
      env: { ...process.env, ...clean, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(user ?? {}),
    });
    let log = "";
    daemon.stdout.on("data", (d) => {
      log += d;
    });
    daemon.stderr.on("data", (d) => {
      log += d;
    });
    const exited = new Promise<number | null>((r) => daemon.once("close", (code) => r(code)));
    cleanups.push(async () => daemon.kill("SIGKILL"));

    const ok = (job: string) => new RegExp(`job ${job}: finished: ok`).test(log);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !["backup", "dump", "prune", "drill"].every(ok)) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(
      ["backup", "dump", "prune", "drill"].filter((job) => !ok(job)),
      log,
    ).toEqual([]);
    expect(log).toMatch(/job backup: started \(backup --fast\)/);
    const scraped = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scraped.status).toBe(200);
    const metrics = parsePromText(await scraped.text());
    expect(metrics.get("pgha_backups")?.samples[0]?.value).toBeGreaterThanOrEqual(1);
    expect(metrics.get("pgha_server_up")?.samples[0]?.value).toBe(1);

    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(log).toMatch(/pgha: stopped/);
    const drills = JSON.parse(
      (await runPgha(["drill", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(drills.some((d: { passed: boolean }) => d.passed)).toBe(true);
    const backups = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(backups.length).toBeGreaterThanOrEqual(1);
  });
});
