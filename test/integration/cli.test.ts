/** The command line as users meet it: help, one-line errors, exit codes, README in step. */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderFlags, renderOptions } from "../../src/cli/commands/options.js";
import { EXIT_CODE_TABLE } from "../../src/errors.js";
import { PGHA_BIN, REPO_ROOT, runPgha } from "../helpers/pgha.js";

describe("pgha command line", () => {
  it("runs to its own end and exit code when the reader of its output went away (pgha prune | head)", async () => {
    const repo = await mkdtemp(join(tmpdir(), "pgha-epipe-"));
    try {
      // Both read ends closed before the first write: every write fails with EPIPE. The
      // error handler used to fail on its own report forever, holding the cluster lock.
      const child = spawn(PGHA_BIN, ["prune", "--repo", repo, "--keep-last", "1"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.destroy();
      child.stderr.destroy();
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve(null);
        }, 20_000);
        child.on("exit", (exit) => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
      expect(code).toBe(0);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

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

/** Only the `pgha: error:` line and its HINT: one line, no stack. */
function oneLineError(stderr: string): string {
  expect(stderr).not.toMatch(/\n\s+at /);
  const errors = stderr.split("\n").filter((l) => /error/.test(l));
  expect(errors, stderr).toHaveLength(1);
  return errors[0] ?? "";
}

describe("a crafted or damaged local repository, and input that is not what it claims", () => {
  it("answers each case with its own exit code and one line naming the object", async () => {
    const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { createHash } = await import("node:crypto");
    const { FsStore } = await import("../../src/storage/fs.js");
    const { encodeContentMeta } = await import("../../src/repository/object-meta.js");
    const { backupManifestKey } = await import("../../src/repository/keys.js");
    const base = await mkdtemp(join(tmpdir(), "pgha-crafted-cli-"));
    try {
      const repo = join(base, "repo");
      const store = new FsStore(repo);
      // A manifest whose checksum is right but which is not JSON.
      const body = Buffer.from('{"kind": "base-backup", "id": ');
      const sha256 = createHash("sha256").update(body).digest("hex");
      const key = backupManifestKey("main", "20261121T000000Z");
      await store.put(key, body, {
        metadata: encodeContentMeta({ sha256, rawSize: body.length, compression: "none" }),
      });
      const env = { PGHA_REPO: repo };

      for (const args of [
        ["backup", "info", "latest"],
        ["backup", "fetch", "20261121T000000Z", join(base, "out")],
      ]) {
        const result = await runPgha(args, { env });
        expect(result.code, result.stderr).toBe(6); // was 70, with a stack trace
        expect(oneLineError(result.stderr)).toMatch(`${key} is corrupt: not valid JSON`);
      }

      // Not found: its own code (was 1, wal-fetch's "not available"); a cluster the
      // repository does not hold is named with those it has.
      const noSuchId = await runPgha(["backup", "info", "20990101T000000Z"], { env });
      expect(noSuchId.code).toBe(13);
      expect(oneLineError(noSuchId.stderr)).toMatch(/no backup 20990101T000000Z/);
      const typo = await runPgha(["backup", "list", "--cluster", "mian"], { env });
      expect(typo.code).toBe(13);
      expect(oneLineError(typo.stderr)).toMatch(/holds no cluster 'mian'/);
      expect(typo.stderr).toMatch(/HINT: its clusters: main /);
      const noDumps = await runPgha(["dump", "fetch", "latest", join(base, "dumps")], { env });
      expect(noDumps.code).toBe(13);

      // --repo naming a file: refused with a hint (was an empty list, exit 0).
      const file = join(base, "pgha.json");
      await writeFile(file, "{}");
      const fileRepo = await runPgha(["backup", "list", "--repo", file]);
      expect(fileRepo.code).toBe(2);
      expect(oneLineError(fileRepo.stderr)).toMatch(`the repository ${file} is a file`);
      expect(fileRepo.stderr).toMatch(/HINT: --repo/);

      // wal-push of a FIFO: refused at once (it hung, waiting for a writer).
      const fifo = join(base, "000000010000000000000001");
      const { execFileSync } = await import("node:child_process");
      execFileSync("mkfifo", [fifo]);
      const pushed = await runPgha(["wal-push", fifo], { env });
      expect(pushed.code).toBe(3);
      expect(oneLineError(pushed.stderr)).toMatch(/is not a regular file \(a FIFO\)/);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  }, 60_000);
});
