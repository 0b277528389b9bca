/** The command line as users meet it: help, one-line errors, exit codes, README in step. */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderFlags, renderOptions } from "../../src/cli/commands/options.js";
import { EXIT_CODE_TABLE } from "../../src/errors.js";
import { REPO_ROOT, runPgha } from "../helpers/pgha.js";

describe("pgha command line", () => {
  it.each([[[]], [["wal-push"]], [["wal-fetch"]], [["options"]], [["restore", "run"]]])(
    "%j --help describes the command and its exit codes",
    async (cmd) => {
      const result = await runPgha([...cmd, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: pgha/);
      expect(result.stdout).toMatch(/Exit codes:/);
    },
  );

  it.each([
    [["wal-push", "--compress", "gzip", "x"], 2, /--compress.*not zstd/],
    [["wal-push", "--repo", "relative", "x"], 2, /not an absolute path/],
    [["wal-push"], 2, /missing required argument/],
    [["no-such-command"], 2, /unknown command/],
    [["wal-push", "--config", "/nonexistent/pgha.json", "x"], 2, /cannot read config file/],
    [["wal-push", "/tmp/postgresql.conf"], 3, /not a WAL file name/],
    [["wal-push", "/nonexistent/000000010000000000000001"], 8, /cannot open/],
  ])("%j exits %i with a one-line error and no stack", async (args, code, message) => {
    const result = await runPgha(args, { env: { PGHA_REPO: "/tmp/pgha-cli-test-repo" } });
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const errorLines = result.stderr.split("\n").filter((l) => /error/.test(l));
    expect(errorLines).toHaveLength(1);
  });

  it.each([
    [["wal-fetch", "000000010000000000000001", "x", "--bogus"]],
    [["wal-fetch", "000000010000000000000001"]],
    [["wal-fetch", "--compress", "gzip", "000000010000000000000001", "x"]],
    [["wal-fetch", "000000010000000000000001", "x", "--repo", "/nonexistent", "--cluster", "typo"]],
  ])("wal-fetch fails closed (126) on %j instead of answering 'not available'", async (args) => {
    const result = await runPgha(args, { cwd: "/tmp" });
    expect(result.code).toBe(126);
    expect(result.stderr).toMatch(/stops recovery/);
  });

  it("fails closed (126) in archive recovery even when the config file's pgdata has standby.signal", async () => {
    // A host with a standby and one shared config file ("pgdata": the standby's directory,
    // for backups): a restore or drill in another directory must not answer "not available"
    // for a storage failure, which would end its recovery early.
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const base = await mkdtemp(join(tmpdir(), "pgha-standby-elsewhere-"));
    try {
      const standby = join(base, "standby");
      const restoring = join(base, "restoring");
      const config = join(base, "pgha.json");
      await mkdir(join(standby), { recursive: true });
      await mkdir(join(restoring, "pg_wal"), { recursive: true });
      await writeFile(join(standby, "standby.signal"), "");
      await writeFile(join(restoring, "recovery.signal"), "");
      await writeFile(config, JSON.stringify({ pgdata: standby, repo: "/nonexistent" }));
      const result = await runPgha(
        ["wal-fetch", "--config", config, "000000010000000000000001", "pg_wal/RECOVERYXLOG"],
        { cwd: restoring },
      );
      expect(result.stderr).toMatch(/stops recovery/);
      expect(result.code).toBe(126);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    "archiver and prefetcher refuse a data directory another user owns (root by hand)",
    async () => {
      const { mkdtemp, chown, rm, readdir } = await import("node:fs/promises");
      const { tmpdir } = await import("node:os");
      const dir = await mkdtemp(join(tmpdir(), "pgha-not-mine-"));
      try {
        await mkdir(join(dir, "pg_wal", "archive_status"), { recursive: true });
        await chown(join(dir, "pg_wal"), 4242, 4242);
        for (const command of ["archiver", "prefetcher"]) {
          const result = await runPgha([command, "--pgdata", dir, "--idle-exit", "1s"], {
            env: { PGHA_REPO: "/tmp/pgha-cli-test-repo" },
          });
          expect(result.code, result.stderr).toBe(2);
          expect(result.stderr).toMatch(/belongs to uid 4242/);
        }
        expect(await readdir(join(dir, "pg_wal"))).toEqual(["archive_status"]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it("reads settings from a config file", async () => {
    const result = await runPgha(["wal-fetch", "000000010000000000000001", "/tmp/x"], {
      env: { PGHA_CONFIG: join(REPO_ROOT, "package.json") },
    });
    // package.json is JSON but not pgha's: the unknown key is named, and wal-fetch fails closed.
    expect(result.code).toBe(126);
    expect(result.stderr).toMatch(/unknown key 'name'/);
  });

  it("keeps README's exit-code table and option reference in step with the code", async () => {
    const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
    for (const row of EXIT_CODE_TABLE) {
      expect(readme).toContain(`| ${row.code} | ${row.name} | ${row.meaning} |`);
    }
    expect(readme).toContain(renderOptions(true));
    expect(readme).toContain(`<!-- flags:start -->\n${renderFlags(true)}\n<!-- flags:end -->`);
  });
});

describe("errors that escape the command", () => {
  it("fail closed for wal-fetch (126, or 1 with standby.signal) and are internal (70) elsewhere", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { fatalExitCode } = await import("../../src/cli/run.js");
    const dir = await mkdtemp(join(tmpdir(), "pgha-fatal-"));
    try {
      const boom = new Error("boom");
      expect(await fatalExitCode(["wal-fetch", "--pgdata", dir, "a", "b"], boom)).toBe(126);
      await writeFile(join(dir, "standby.signal"), "");
      expect(await fatalExitCode(["wal-fetch", `--pgdata=${dir}`, "a", "b"], boom)).toBe(1);
      expect(await fatalExitCode(["wal-push", "x"], boom)).toBe(70);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
