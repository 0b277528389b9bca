/** `backup --type full|incr|diff` and --backup-max-incr, as a scheduled job's arguments meet them. */
import { describe, expect, it } from "vitest";
import { checkJobArgs } from "../../src/cli/job-args.js";
import { UsageError } from "../../src/errors.js";

const backupJob = (args: string[]) => ({ name: "daily", run: "backup" as const, args });

describe("backup --type", () => {
  it.each([
    [["--type", "incr"]],
    [["--type", "full"]],
    [["--type", "diff"]],
    [["--type", "incr", "--backup-max-incr", "13"]],
    [["--type", "incr", "--backup-incr-whole", "90"]],
  ])("accepts %j", async (args) => {
    await expect(checkJobArgs(backupJob(args), undefined)).resolves.toBeUndefined();
  });

  it.each([
    [["--type", "differential"], /--type.*'differential' is not one of full, incr, diff/],
    [["--type", "incr", "--backup-max-incr", "255"], /--backup-max-incr.*from 0 to 254/],
    [["--type", "incr", "--backup-incr-whole", "0"], /--backup-incr-whole.*from 1 to 100/],
    [["--type", "incr", "--backup-incr-whole", "101"], /--backup-incr-whole.*from 1 to 100/],
  ])("refuses %j", async (args, message) => {
    const checked = checkJobArgs(backupJob(args), undefined);
    await expect(checked).rejects.toBeInstanceOf(UsageError);
    await expect(checked).rejects.toThrow(message);
  });
});
