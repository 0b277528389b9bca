/** The failure notification's environment and the last error line of a job's stderr. */
import { describe, expect, it } from "vitest";
import { formatLogEntry } from "../../src/log.js";
import { errorMessageOf, LastErrorLine, notificationEnv } from "../../src/schedule/notify.js";

describe("the notification environment", () => {
  it("names the job, its exit code, message and duration in seconds", () => {
    expect(
      notificationEnv({
        job: "nightly",
        code: 7,
        signal: null,
        durationMs: 61_234,
        lastError: "pgha: error: the storage failed",
      }),
    ).toEqual({
      PGHA_JOB: "nightly",
      PGHA_EXIT_CODE: "7",
      PGHA_MESSAGE: "pgha: error: the storage failed",
      PGHA_JOB_DURATION: "61.2",
    });
  });

  it("gives a killed job 128 + the signal's number and says so when it wrote no error", () => {
    const env = notificationEnv({
      job: "j",
      code: null,
      signal: "SIGTERM",
      durationMs: 0,
      lastError: undefined,
    });
    expect(env).toMatchObject({ PGHA_EXIT_CODE: "143", PGHA_MESSAGE: "killed by SIGTERM" });
    const silent = notificationEnv({
      job: "j",
      code: 2,
      signal: null,
      durationMs: 0,
      lastError: undefined,
    });
    expect(silent.PGHA_MESSAGE).toBe("exited with code 2");
  });
});

describe("the last error line of a job's stderr", () => {
  const time = new Date("2026-12-01T19:00:00Z");
  const line = (format: "text" | "json", level: "info" | "error", message: string, hint?: string) =>
    formatLogEntry({ time, level, source: "pgha", message, hint }, format);

  it("reads pgha's error lines in both formats, and only error lines", () => {
    expect(errorMessageOf(line("text", "error", "error: no such backup").trim())).toBe(
      "pgha: error: no such backup",
    );
    expect(errorMessageOf(line("json", "error", "no such backup"))).toBe("no such backup");
    expect(errorMessageOf(line("text", "info", "stored"))).toBeUndefined();
    expect(errorMessageOf(line("json", "info", "stored"))).toBeUndefined();
    expect(errorMessageOf("HINT: run pgha backup list")).toBeUndefined();
    expect(errorMessageOf("{not json")).toBeUndefined();
    expect(errorMessageOf("pgha: internal error: cannot run Node.js")).toBe(
      "pgha: internal error: cannot run Node.js",
    );
  });

  it("keeps the last one across chunks split anywhere, hints and later info lines aside", () => {
    const stderr =
      line("text", "error", "error: first", "a hint") +
      line("text", "error", "error: the storage failed", "check the endpoint") +
      line("text", "info", "cleaning up") +
      line("json", "info", "done");
    for (const size of [1, 7, stderr.length]) {
      const tail = new LastErrorLine();
      for (let at = 0; at < stderr.length; at += size) tail.push(stderr.slice(at, at + size));
      expect(tail.end()).toBe("pgha: error: the storage failed");
    }
    const unterminated = new LastErrorLine();
    unterminated.push('{"level":"error","message":"cut short"}');
    expect(unterminated.end()).toBe("cut short");
    expect(new LastErrorLine().end()).toBeUndefined();
  });
});
