/** With --json a failure is also a JSON object on stdout, with the exit code run() returns. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { errorObject, wantsJson } from "../../src/cli/report.js";
import { run } from "../../src/cli/run.js";
import { EXIT_CODES, PghaError } from "../../src/errors.js";

afterEach(() => vi.restoreAllMocks());

/** run(argv) with stdout and stderr captured. */
async function runCaptured(argv: string[]) {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
    stderr += String(chunk);
    return true;
  });
  const code = await run(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

describe("a failing command with --json", () => {
  it.each([
    [["backup", "list", "--json", "--repo", "relative"], "usage", /not an absolute path/],
    [["backup", "list", "--json", "--bogus"], "usage", /unknown option '--bogus'/],
    [["backup", "info", "20261121T220512Z", "--json"], "notFoundInRepo", /holds no cluster/],
  ])(
    "%j prints {error: {kind, message, hint, exitCode}} and exits with that code",
    async (argv, kind, message) => {
      const repo = await mkdtemp(join(tmpdir(), "pgha-json-error-"));
      try {
        const result = await runCaptured([
          ...argv,
          ...(argv.includes("--repo") ? [] : ["--repo", repo]),
        ]);
        const printed = JSON.parse(result.stdout);
        expect(Object.keys(printed.error)).toEqual(["kind", "message", "hint", "exitCode"]);
        expect(printed.error.kind).toBe(kind);
        expect(printed.error.message).toMatch(message);
        expect(printed.error.exitCode).toBe(EXIT_CODES[kind as keyof typeof EXIT_CODES]);
        expect(result.code).toBe(printed.error.exitCode);
        // The one-line error and its HINT still go to stderr, as without --json.
        expect(result.stderr).toMatch(/^\S+Z ERROR +pgha: error: /);
      } finally {
        await rm(repo, { recursive: true, force: true });
      }
    },
  );

  it("an unknown option without --json: one error line, then a HINT line", async () => {
    const result = await runCaptured(["backup", "list", "--bogus"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^\S+Z ERROR +pgha: error: unknown option '--bogus'\nHINT: run the command with --help for its usage\n$/,
    );
  });

  it("prints nothing on stdout without --json", async () => {
    const result = await runCaptured(["backup", "list", "--repo", "relative"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  it("puts an error's details (restore plan's refusal) beside the error object", () => {
    const error = new PghaError("unrestorable", "cannot restore: WAL is missing", {
      hint: "choose a target before the gap",
      details: { restorable: false, gaps: ["000000010000000000000005"] },
    });
    expect(errorObject(error, 11)).toEqual({
      restorable: false,
      gaps: ["000000010000000000000005"],
      error: {
        kind: "unrestorable",
        message: "cannot restore: WAL is missing",
        hint: "choose a target before the gap",
        exitCode: 11,
      },
    });
    expect(errorObject(new Error("boom"), 70).error).toEqual({
      kind: "internal",
      message: "boom",
      hint: null,
      exitCode: 70,
    });
  });

  it("reads --json only before --", () => {
    expect(wantsJson(["status", "--json"])).toBe(true);
    expect(wantsJson(["retention", "simulate", "--", "--json"])).toBe(false);
  });
});

describe("schedule show --json", () => {
  it("prints each job with its next runs as UTC instants", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-schedule-show-"));
    try {
      const config = join(dir, "pgha.json");
      const { writeFile } = await import("node:fs/promises");
      const job = { name: "nightly", run: "backup", cron: "0 2 * * *", zone: "Europe/Berlin" };
      await writeFile(config, JSON.stringify({ repo: dir, jobs: [job] }));
      const result = await runCaptured([
        "schedule",
        "show",
        "--json",
        "--count",
        "2",
        "--config",
        config,
      ]);
      expect(result.code, result.stderr).toBe(0);
      const [shown] = JSON.parse(result.stdout);
      expect(shown).toMatchObject({ ...job, args: [] });
      expect(shown.nextRuns).toHaveLength(2);
      // 02:00 in Berlin: 01:00 or 00:00 UTC, by the season.
      for (const at of shown.nextRuns) expect(at).toMatch(/T0[01]:00:00\.000Z$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
