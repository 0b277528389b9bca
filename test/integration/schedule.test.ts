/**
 * The scheduler for real: per-second jobs perform a backup, a dump, a prune and a drill
 * on a test cluster; the drill passes; --metrics-listen serves metrics that parse; SIGTERM
 * stops the daemon cleanly. A failing job runs the on-failure command with its variables,
 * and --log-format json --log-file writes lines that parse.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../src/errors.js";
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

describe("pgha schedule run, a failing job", () => {
  it("runs the on-failure command with the job's variables and logs JSON lines to the log file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-schedule-fail-"));
    try {
      const notified = join(dir, "notified");
      const logFile = join(dir, "pgha.log");
      const config = join(dir, "pgha.json");
      await writeFile(
        config,
        JSON.stringify({
          "on-failure": `printf '%s|%s|%s|%s\\n' "$PGHA_JOB" "$PGHA_EXIT_CODE" "$PGHA_MESSAGE" "$PGHA_JOB_DURATION" >> ${notified}`,
          jobs: [
            {
              name: "broken",
              cron: "* * * * * *",
              zone: "UTC",
              run: "backup",
              // Nothing listens on port 1: the backup fails at once.
              args: ["--pg-conn", "postgresql://postgres@127.0.0.1:1/postgres"],
            },
          ],
        }),
      );
      const clean: Record<string, string> = {};
      for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
      const args = ["schedule", "run", "--config", config, "--log-format", "json"];
      const daemon = spawn(process.execPath, [PGHA_ENTRY, ...args, "--log-file", logFile], {
        env: { ...process.env, ...clean, PGHA_REPO: join(dir, "repo") },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      daemon.stderr.on("data", (d) => {
        stderr += d;
      });
      const exited = new Promise<number | null>((r) => daemon.once("close", (code) => r(code)));
      try {
        const deadline = Date.now() + 30_000;
        let lines: string[] = [];
        while (Date.now() < deadline && lines.length === 0) {
          await new Promise((r) => setTimeout(r, 200));
          lines = (await readFile(notified, "utf8").catch(() => "")).split("\n").filter(Boolean);
        }
        expect(lines.length, stderr).toBeGreaterThanOrEqual(1);
        const [job, code, message, duration] = (lines[0] ?? "").split("|");
        expect(job).toBe("broken");
        expect(code).toBe(String(EXIT_CODES.postgres));
        expect(message).toMatch(/^cannot connect to PostgreSQL: .*ECONNREFUSED/);
        expect(duration).toMatch(/^\d+\.\d$/);
      } finally {
        daemon.kill("SIGTERM");
      }
      expect(await exited).toBe(0);
      // Every line, the scheduler's and the job's, on stderr and in the file, is an object.
      const parse = (text: string) =>
        text
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const logged = parse(await readFile(logFile, "utf8"));
      expect(parse(stderr).length).toBeGreaterThanOrEqual(logged.length);
      for (const entry of logged) {
        expect(Number.isNaN(Date.parse(String(entry.time))), JSON.stringify(entry)).toBe(false);
        expect(["error", "warn", "info", "debug"]).toContain(entry.level);
      }
      const messages = logged.map((e) => `${e.level} ${e.message}`);
      expect(messages).toContainEqual(expect.stringMatching(/^info job broken: started \(backup/));
      expect(messages).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^error job broken: finished: failed in \\d+\\.\\ds \\(exit code ${EXIT_CODES.postgres}\\): cannot connect`,
          ),
        ),
      );
      // The job's own error line, written by the job to the same file.
      expect(logged).toContainEqual(
        expect.objectContaining({
          level: "error",
          kind: "postgres",
          exitCode: EXIT_CODES.postgres,
        }),
      );
      expect(messages).toContainEqual("info job broken: ran the on-failure command");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
