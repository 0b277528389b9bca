/** Each subcommand's --help: its own flags, the settings it takes by group, S3 in one place. */
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/commands-table.js";
import { buildProgram } from "../../src/cli/program.js";
import { OPTIONS, optionsInGroups } from "../../src/config/options.js";

async function helpOf(words: string[]): Promise<string> {
  let out = "";
  const program = buildProgram(() => undefined);
  const capture = (command: typeof program) => {
    command.configureOutput({ writeOut: (text) => (out += text) });
    for (const sub of command.commands) capture(sub);
  };
  capture(program);
  await program.parseAsync([...words, "--help"], { from: "user" }).catch(() => undefined);
  return out;
}

const S3_FLAGS = optionsInGroups(["s3"]).map((key) => `--${OPTIONS[key].name}`);

describe("subcommand help", () => {
  it("lists the asynchronous archiving and prefetch settings only where they apply", async () => {
    const speed = ["--archive-async", "--archive-backlog-warn", "--prefetch"];
    const backup = await helpOf(["backup", "create"]);
    for (const flag of speed) expect(backup).not.toContain(flag);
    expect(backup).toContain("--archive-timeout");
    const push = await helpOf(["wal-push"]);
    for (const flag of speed) expect(push).toContain(flag);
    expect(await helpOf(["wal-fetch"])).toContain("--prefetch");
  });

  it("backup --help: its flags, then the setting groups, and the S3 settings compactly", async () => {
    const help = await helpOf(["backup", "create"]);
    const headings = help.split("\n").filter((line) => /^\S.*:$/.test(line));
    expect(headings).toEqual([
      "Options:",
      "Repository options:",
      "Data directory options:",
      "PostgreSQL options:",
      "WAL archiving options:",
      "Parallelism options:",
      "General options:",
      "S3 options (for s3:// repositories; 'pgha options' describes each):",
      "Exit codes:",
    ]);
    const s3 = help.slice(help.indexOf("S3 options"), help.indexOf("Exit codes:"));
    expect(s3).toBe(
      "S3 options (for s3:// repositories; 'pgha options' describes each):\n" +
        "  --s3-endpoint --s3-region --s3-force-path-style --s3-checksums\n" +
        "  --s3-storage-class --s3-sse --s3-sse-kms-key-id --s3-part-size --s3-ca-file\n\n",
    );
    // Every S3 flag is named once, none with its description line.
    for (const flag of S3_FLAGS)
      expect(help.split(new RegExp(`${flag}(?![\\w-])`))).toHaveLength(2);
    expect(help).not.toMatch(/--s3-endpoint <url>/);
    expect(help).toMatch(/Options:\n {2}--fast .*\n(.*\n)* {2}--label <text>/);
    expect(help).toMatch(/Repository options:\n {2}--repo <path\|url>/);
  });

  it("a command without storage shows no storage groups; one that reads the repository shows them", async () => {
    const show = await helpOf(["schedule", "show"]);
    expect(show).not.toMatch(/Repository options:|S3 options/);
    expect(show).toMatch(/General options:\n(.*\n)* {2}--config <file>/);
    const list = await helpOf(["backup", "list"]);
    expect(list).toMatch(/Repository options:/);
    expect(list).toMatch(/S3 options/);
    expect(list).not.toMatch(/PostgreSQL options:|Parallelism options:/);
  });

  it("verify takes the point-in-time window's settings, not the retention rules", async () => {
    const help = await helpOf(["verify"]);
    expect(help).toMatch(
      /Point-in-time window options:\n {2}--retention-zone <zone>(.*\n)* {2}--pitr-window <duration>/,
    );
    expect(help).not.toContain("--keep-daily");
    const prune = await helpOf(["prune"]);
    expect(prune).toContain("--keep-daily");
    expect(prune).toContain("--pitr-window");
  });

  it("the compact S3 flags are still taken", async () => {
    let region: string | undefined;
    const recording = {
      ...COMMANDS,
      "backup list": {
        ...COMMANDS["backup list"],
        run: async (_: unknown, opts: { settings: { s3Region?: string } }) => {
          region = opts.settings.s3Region;
          return 0;
        },
      },
    } as unknown as typeof COMMANDS;
    await buildProgram(() => undefined, recording).parseAsync(
      ["backup", "list", "--s3-region", "eu-west-3"],
      { from: "user" },
    );
    expect(region).toBe("eu-west-3");
  });
});
