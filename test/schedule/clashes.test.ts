/** "Full weekly, incremental daily": jobs that come due together on one lock (schedule/clashes.ts). */
import { describe, expect, it } from "vitest";
import { describeClash, findClashes } from "../../src/schedule/clashes.js";
import { parseJobs } from "../../src/schedule/jobs.js";

const after = new Date("2026-12-01T12:00:00Z"); // a Tuesday

const jobs = (...specs: [string, string, "backup" | "prune" | "dump" | "drill", string[]][]) =>
  parseJobs(
    specs.map(([name, cron, run, args]) => ({ name, cron, run, args })),
    "UTC",
  );

describe("schedule clashes", () => {
  it("full on Sundays and incremental every day clash on Sundays: named, with the fix", () => {
    const found = findClashes(
      jobs(
        ["full-weekly", "0 1 * * 0", "backup", ["--type", "full"]],
        ["incr-daily", "0 1 * * *", "backup", ["--type", "incr"]],
      ),
      after,
    );
    expect(found).toEqual([
      {
        first: "full-weekly",
        second: "incr-daily",
        lock: "cluster",
        at: new Date("2026-12-06T01:00:00Z"),
        times: 5,
      },
    ]);
    expect(describeClash(found[0] as (typeof found)[0])).toMatch(
      /jobs 'full-weekly' and 'incr-daily' both come due at 2026-12-06T01:00:00.000Z .*'cluster' lock.*'0 1 \* \* 1-6'/,
    );
  });

  it("full on Sundays and incremental Monday to Saturday do not clash", () => {
    expect(
      findClashes(
        jobs(
          ["full-weekly", "0 1 * * 0", "backup", ["--type", "full"]],
          ["incr-daily", "0 1 * * 1-6", "backup", ["--type", "incr"]],
          ["prune", "30 5 * * *", "prune", ["--confirm"]],
          ["drill", "0 1 * * *", "drill", []],
        ),
        after,
      ),
    ).toEqual([]);
  });

  it("prune shares the cluster lock with backup and the dump lock with dump; other clusters do not clash", () => {
    const found = findClashes(
      jobs(
        ["backup", "0 3 * * *", "backup", []],
        ["prune", "0 3 * * *", "prune", ["--confirm"]],
        ["dump", "0 3 * * *", "dump", []],
        ["other", "0 3 * * *", "backup", ["--cluster", "other"]],
      ),
      after,
    );
    expect(found.map((c) => [c.first, c.second, c.lock])).toEqual([
      ["backup", "prune", "cluster"],
      ["prune", "dump", "dump"],
    ]);
  });

  it("a job every minute still meets a weekly one a month away", () => {
    const found = findClashes(
      jobs(["busy", "* * * * *", "prune", []], ["monthly", "0 4 1 * *", "backup", []]),
      after,
    );
    expect(found.map((c) => c.at.toISOString())).toEqual(["2027-01-01T04:00:00.000Z"]);
  });
});
