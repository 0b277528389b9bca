/**
 * A scheduled job's arguments are checked at start with the parser the job will meet
 * (issue 12, point 6): a typo fails `schedule run` / `schedule show`, not the 03:00 run.
 */
import { describe, expect, it } from "vitest";
import { checkJobArgs, jobArgv } from "../../src/cli/job-args.js";
import { UsageError } from "../../src/errors.js";

const job = (run: "backup" | "dump" | "prune" | "drill", args: string[]) => ({
  name: "nightly",
  run,
  args,
});

describe("checkJobArgs", () => {
  it.each([
    [job("backup", ["--fast", "--label", "nightly"])],
    [job("prune", ["--confirm", "--keep-last", "3"])],
    [job("drill", ["--target-time", "-1h"])],
    [job("dump", [])],
  ])("accepts %j", async (spec) => {
    await expect(checkJobArgs(spec, undefined)).resolves.toBeUndefined();
  });

  it.each([
    [job("backup", ["--fsat"]), /job 'nightly': unknown option '--fsat'/],
    [job("prune", ["--keep-last", "three"]), /job 'nightly': .*--keep-last/],
    [job("backup", ["--compress", "gzip"]), /job 'nightly': .*--compress/],
    [job("drill", ["extra-word"]), /job 'nightly': .*(too many arguments|unknown command)/],
    // Values the command itself parses before it does anything: the job would exit 2 too.
    [job("drill", ["--target-time", "-1hour"]), /job 'nightly': --target-time '-1hour'/],
    [job("drill", ["--target-lsn", "0/ZZ"]), /job 'nightly': --target-lsn '0\/ZZ'/],
    [job("drill", ["--target-name", ""]), /job 'nightly': --target-name is empty/],
    [job("prune", ["--retention-zone", "Mars/Phobos"]), /job 'nightly': 'Mars\/Phobos'/],
  ])("refuses %j with a usage error naming the job", async (spec, message) => {
    const checked = checkJobArgs(spec, undefined);
    await expect(checked).rejects.toBeInstanceOf(UsageError);
    await expect(checked).rejects.toThrow(message);
    await expect(checked).rejects.toMatchObject({
      hint: expect.stringMatching(/the job runs 'pgha/),
    });
  });

  it("checks the command line the scheduler starts", () => {
    expect(jobArgv(job("backup", ["--fast"]), "/etc/pgha/pgha.json")).toEqual([
      "backup",
      "--config",
      "/etc/pgha/pgha.json",
      "--fast",
    ]);
  });
});
