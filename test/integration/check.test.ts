/**
 * pgha check end to end (issue 13, point 2), on the local repository and the S3 test
 * server with a real archiving cluster: it passes on a good setup (the segment
 * pg_switch_wal() closes reaches the repository) and names the broken step, with its exit
 * code, on a bad one: archive_command into another cluster or repository, an archive_command
 * that never runs pgha, archive_mode off, an unreachable store.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StepResult } from "../../src/check/steps.js";
import { EXIT_CODES } from "../../src/errors.js";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { freePort } from "../helpers/pg-cluster.js";
import { pghaCommandLine, runPgha } from "../helpers/pgha.js";
import { repoKinds } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

interface Report {
  ok: boolean;
  exitCode: number;
  failedStep: string | null;
  steps: StepResult[];
}

async function check(env: Record<string, string>, args: string[] = []) {
  const run = await runPgha(["check", "--json", ...args], { env });
  const report = JSON.parse(run.stdout) as Report;
  expect(report.exitCode, run.stderr).toBe(run.code);
  const status = Object.fromEntries(report.steps.map((s) => [s.step, s.status]));
  return {
    code: run.code,
    report,
    status,
    step: (name: string) => report.steps.find((s) => s.step === name),
  };
}

describe.skipIf(!pg).each(repoKinds(server))("pgha check on a %s repository", (kind) => {
  let setup: ArchivingSetup;

  beforeAll(async () => {
    setup = await archivingCluster(kind, server);
  });
  afterAll(async () => {
    await setup?.destroy();
  });

  async function setArchiveCommand(command: string | undefined): Promise<void> {
    const sql =
      command === undefined
        ? "ALTER SYSTEM RESET archive_command"
        : `ALTER SYSTEM SET archive_command = '${command.replace(/'/g, "''")}'`;
    await setup.cluster.sql(sql);
    await setup.cluster.sql("SELECT pg_reload_conf()");
    // The archiver reads the new setting at its next cycle; a check comes later anyway.
  }

  it("passes every step on a good setup, the switched segment stored in the repository", async () => {
    const { code, report, step } = await check(setup.env);
    expect(code, JSON.stringify(report, null, 2)).toBe(0);
    expect(report.steps.map((s) => [s.step, s.status])).toEqual([
      ["config", "pass"],
      ["storage", "pass"],
      ["conditional-writes", "pass"],
      ["server", "pass"],
      ["identity", "pass"],
      ["archive-mode", "pass"],
      ["archive-command", "pass"],
      ["wal-switch", "pass"],
    ]);
    // s3rver ignores If-None-Match: WAL goes under content-addressed keys there.
    expect(step("wal-switch")?.detail).toMatch(
      kind === "local" ? /^[0-9A-F]{24} reached .* \(plain key\)$/ : /content-addressed key/,
    );
    expect(step("conditional-writes")?.detail).toMatch(
      kind === "local" ? /^honoured/ : /^not honoured/,
    );
  });

  it.runIf(kind === "local")(
    "finds the server running on --pgdata when no connection is named",
    async () => {
      const noLibpq = { PGHOST: "", PGPORT: "", PGUSER: "", PGDATABASE: "" };
      const found = await check({ ...setup.env, ...noLibpq }, ["--pgdata", setup.cluster.dataDir]);
      expect(found.code, JSON.stringify(found.report, null, 2)).toBe(0);
      expect(found.status["wal-switch"]).toBe("pass");
      const none = await check({ ...setup.env, ...noLibpq });
      expect(none.code).toBe(0);
      expect(none.status).toMatchObject({ storage: "pass", server: "skip", "wal-switch": "skip" });
    },
  );

  it("names archive_command storing into another cluster or repository (exit notArchiving)", async () => {
    try {
      await setArchiveCommand(pghaCommandLine("wal-push --cluster other %p"));
      const other = await check(setup.env);
      expect(other.code).toBe(EXIT_CODES.notArchiving);
      expect(other.report.failedStep).toBe("archive-command");
      expect(other.step("archive-command")?.detail).toContain(
        "archive_command stores WAL as cluster 'other', this check's cluster is 'main'",
      );
      expect(other.status["wal-switch"]).toBe("skip");

      await setArchiveCommand(`PGHA_REPO=/elsewhere ${pghaCommandLine("wal-push %p")}`);
      const elsewhere = await check(setup.env);
      expect(elsewhere.code).toBe(EXIT_CODES.notArchiving);
      expect(elsewhere.step("archive-command")?.detail).toContain(
        "archive_command stores WAL in file:///elsewhere",
      );
    } finally {
      await setArchiveCommand(undefined);
    }
  });

  it.runIf(kind === "local")(
    "fails wal-switch when the segment does not arrive within --timeout (exit walNotArchived)",
    async () => {
      try {
        // Reads as a pgha archive_command, but the shell never runs pgha.
        await setArchiveCommand(`false && ${pghaCommandLine("wal-push %p")}`);
        const stuck = await check(setup.env, ["--timeout", "3s"]);
        expect(stuck.code).toBe(EXIT_CODES.walNotArchived);
        expect(stuck.report.failedStep).toBe("wal-switch");
        expect(stuck.step("wal-switch")?.detail).toMatch(
          /^[0-9A-F]{24} did not reach .* within 3s$/,
        );
        expect(stuck.step("wal-switch")?.hint).toMatch(/pg_stat_archiver: \d+ failed attempts/);
      } finally {
        await setArchiveCommand(undefined);
      }
      // Archiving recovers: the next check passes again.
      expect((await check(setup.env)).code).toBe(0);
    },
  );

  it.runIf(kind === "local")("names archive_mode off (exit notArchiving)", async () => {
    try {
      await setup.cluster.sql("ALTER SYSTEM SET archive_mode = off");
      await setup.cluster.stop();
      await setup.cluster.start();
      const off = await check(setup.env);
      expect(off.code).toBe(EXIT_CODES.notArchiving);
      expect(off.report.failedStep).toBe("archive-mode");
      expect(off.step("archive-mode")?.hint).toContain("archive_mode = on");
    } finally {
      await setup.cluster.sql("ALTER SYSTEM RESET archive_mode");
      await setup.cluster.stop();
      await setup.cluster.start();
    }
  });
});

describe("pgha check without a server", () => {
  it("names an unreachable store (exit storage) and skips the server steps", async () => {
    const closed = await freePort();
    const { code, report, status } = await check(
      {
        PGHA_REPO: "s3://pgha-check/x",
        PGHA_S3_ENDPOINT: `http://127.0.0.1:${closed}`,
        PGHA_RETRY_TIMEOUT: "2s",
        AWS_ACCESS_KEY_ID: "check",
        AWS_SECRET_ACCESS_KEY: "check-secret",
        PGHOST: "",
        PGPORT: "",
        PGDATABASE: "",
        PGSERVICE: "",
        PGHOSTADDR: "",
      },
      ["--retry-timeout", "1s"],
    );
    expect(code).toBe(EXIT_CODES.storage);
    expect(report.failedStep).toBe("storage");
    expect(report.steps.find((s) => s.step === "storage")?.detail).toMatch(
      /^cannot write the probe object: PUT s3:\/\/pgha-check\/x\/v1\/clusters\/main\/probes\/check-/,
    );
    expect(status).toMatchObject({
      config: "pass",
      "conditional-writes": "skip",
      server: "skip",
      "wal-switch": "skip",
    });
  });
});
