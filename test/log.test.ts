/** Log lines: a time and a level on every line, text or JSON, and the log file. */
import { chown, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { reportError, useLogOutput } from "../src/cli/report.js";
import { EXIT_CODES, NotFoundInRepoError } from "../src/errors.js";
import { formatLogEntry, type LogOutput, openLogFile, stderrLogger } from "../src/log.js";
import { freshDirPerTest } from "./helpers/temp-dir.js";

const ISO = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";

/** What the code under test writes to stderr, line by line. */
function captureStderr(): { lines: () => string[] } {
  const written: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  return { lines: () => written.join("").split("\n").slice(0, -1) };
}

afterEach(() => {
  vi.restoreAllMocks();
  useLogOutput({ format: "text" });
});

const dir = freshDirPerTest("pgha-log-");

describe("log lines", () => {
  const time = new Date("2026-12-01T19:05:00.123Z");

  it("text: the time, the level and the source before the message; an error's hint below", () => {
    expect(formatLogEntry({ time, level: "info", source: "pgha", message: "stored" }, "text")).toBe(
      "2026-12-01T19:05:00.123Z INFO  pgha: stored\n",
    );
    expect(
      formatLogEntry(
        { time, level: "error", source: "pgha", message: "error: no such backup", hint: "list" },
        "text",
      ),
    ).toBe("2026-12-01T19:05:00.123Z ERROR pgha: error: no such backup\nHINT: list\n");
  });

  it("json: one object a line with time, level, source, message, hint and more fields", () => {
    const text = formatLogEntry(
      {
        time,
        level: "error",
        source: "pgha archiver",
        message: 'a "quoted"\nmessage',
        hint: "do this",
        fields: { kind: "storage", exitCode: 7 },
      },
      "json",
    );
    expect(text.endsWith("\n")).toBe(true);
    expect(text.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(text)).toEqual({
      time: "2026-12-01T19:05:00.123Z",
      level: "error",
      source: "pgha archiver",
      message: 'a "quoted"\nmessage',
      hint: "do this",
      kind: "storage",
      exitCode: 7,
    });
  });

  it("every level the logger writes has a time and a level; lower levels are left out", () => {
    const stderr = captureStderr();
    const log = stderrLogger("info", "pgha");
    log.error("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    expect(stderr.lines()).toHaveLength(3);
    const [e, w, i] = stderr.lines();
    expect(e).toMatch(new RegExp(`^${ISO} ERROR pgha: e$`));
    expect(w).toMatch(new RegExp(`^${ISO} WARN  pgha: w$`));
    expect(i).toMatch(new RegExp(`^${ISO} INFO  pgha: i$`));
  });

  it("json with a log file: stderr and the file get the same parseable lines, appended", async () => {
    const file = join(dir.path, "pgha.log");
    await writeFile(file, "an earlier line\n", { mode: 0o600 });
    const output: LogOutput = { format: "json", file };
    const stderr = captureStderr();
    const log = stderrLogger("debug", "pgha", output);
    log.info("one");
    log.debug("two");
    const lines = stderr.lines();
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: "info", message: "one", source: "pgha" },
      { level: "debug", message: "two", source: "pgha" },
    ]);
    for (const l of lines) expect(Date.parse(JSON.parse(l).time)).not.toBeNaN();
    const inFile = (await readFile(file, "utf8")).split("\n");
    expect(inFile).toEqual(["an earlier line", ...lines, ""]);
    expect((await stat(file)).mode & 0o777, "an existing file keeps its mode").toBe(0o600);
  });

  it("creates the log file mode 0660, whatever the umask", async () => {
    const file = join(dir.path, "new.log");
    captureStderr();
    stderrLogger("info", "pgha", { format: "text", file }).info("hello");
    expect((await stat(file)).mode & 0o777).toBe(0o660);
    expect(await readFile(file, "utf8")).toMatch(new RegExp(`^${ISO} INFO  pgha: hello\n$`));
  });

  it.skipIf(process.geteuid?.() !== 0)(
    "as root, gives a new log file its directory's owner, or says others cannot write it",
    async () => {
      const shared = join(dir.path, "shared");
      await mkdir(shared);
      await chown(shared, 4242, 4243);
      const stderr = captureStderr();
      const fd = openLogFile(join(shared, "pgha.log"), "text", 0);
      expect(fd).not.toBe("failed");
      const info = await stat(join(shared, "pgha.log"));
      expect([info.uid, info.gid, info.mode & 0o777]).toEqual([4242, 4243, 0o660]);
      expect(stderr.lines()).toEqual([]);
      // dir.path is root's: the file stays root's, and root is told.
      openLogFile(join(dir.path, "root.log"), "text", 0);
      expect(stderr.lines()[0]).toMatch(/WARN .*root\.log: created owned by root .*cannot append/);
      expect(stderr.lines()[1]).toMatch(/^HINT: /);
    },
  );

  it("a log file that cannot be opened is said once on stderr and never fails the command", () => {
    const file = join(dir.path, "no-such-dir", "pgha.log");
    const stderr = captureStderr();
    const log = stderrLogger("info", "pgha", { format: "json", file });
    log.info("first");
    log.info("second");
    const lines = stderr.lines().map((l) => JSON.parse(l));
    expect(lines.map((l) => l.message)).toEqual([
      "first",
      `log file ${file}: cannot create it: no such file or directory (ENOENT); logging to stderr only`,
      "second",
    ]);
    expect(lines[1].level).toBe("warn");
  });
});

describe("the error printer", () => {
  const error = new NotFoundInRepoError("no backup 20990101T000000Z", "run pgha backup list");

  it("text: one error line with its time and level, and one HINT line", () => {
    const stderr = captureStderr();
    reportError(error);
    expect(stderr.lines()).toHaveLength(2);
    expect(stderr.lines()[0]).toMatch(
      new RegExp(`^${ISO} ERROR pgha: error: no backup 20990101T000000Z$`),
    );
    expect(stderr.lines()[1]).toBe("HINT: run pgha backup list");
  });

  it("json: one object with the message, hint, error kind and exit code", () => {
    useLogOutput({ format: "json" });
    const stderr = captureStderr();
    reportError(error);
    expect(stderr.lines()).toHaveLength(1);
    expect(JSON.parse(stderr.lines()[0] ?? "")).toMatchObject({
      level: "error",
      message: "no backup 20990101T000000Z",
      hint: "run pgha backup list",
      kind: "notFoundInRepo",
      exitCode: EXIT_CODES.notFoundInRepo,
    });
    reportError(new TypeError("a bug"));
    const bug = JSON.parse(stderr.lines()[1] ?? "");
    expect(bug).toMatchObject({ level: "error", kind: "internal", exitCode: 70 });
    expect(bug.message).toMatch(/^internal error \(please report it\): a bug$/);
    expect(bug.stack).toMatch(/TypeError: a bug\n\s+at /);
  });
});
