/** The commander-free fast path must read exactly what commander reads, or step aside. */
import { describe, expect, it } from "vitest";
import { parseHotArgs } from "../../src/cli/hot-args.js";
import { buildProgram } from "../../src/cli/program.js";

async function viaCommander(
  argv: string[],
): Promise<{ positionals: string[]; opts: Record<string, unknown> }> {
  const program = buildProgram(() => undefined);
  let captured: { positionals: string[]; opts: Record<string, unknown> } | undefined;
  for (const command of program.commands) {
    command.action((...args: unknown[]) => {
      const cmd = args.at(-1) as { opts(): Record<string, unknown> };
      captured = { positionals: args.slice(0, -2) as string[], opts: cmd.opts() };
    });
  }
  await program.parseAsync(argv, { from: "user" });
  if (!captured) throw new Error("no action ran");
  return captured;
}

describe("parseHotArgs", () => {
  it.each([
    [["wal-push", "pg_wal/000000010000000000000001"]],
    [["wal-push", "--repo", "s3://bucket/p", "--cluster=db1", "pg_wal/000000010000000000000001"]],
    [["wal-push", "pg_wal/x", "--compress", "zstd:5", "--config", "/etc/p.json"]],
    [["wal-fetch", "000000010000000000000001", "pg_wal/RECOVERYXLOG"]],
    [
      [
        "wal-fetch",
        "--pgdata",
        "/d",
        "000000010000000000000001",
        "pg_wal/RECOVERYXLOG",
        "--s3-endpoint=http://h:9000",
      ],
    ],
  ])("reads %j as commander does", async (argv) => {
    const hot = parseHotArgs(argv);
    expect(hot).toBeDefined();
    const ref = await viaCommander(argv);
    expect(hot?.positionals).toEqual(ref.positionals);
    expect(hot?.opts).toEqual(ref.opts);
  });

  it.each([
    [["wal-push"]],
    [["wal-push", "a", "b"]],
    [["wal-push", "--help"]],
    [["wal-push", "-h", "x"]],
    [["wal-push", "--pgdata", "/d", "x"]],
    [["wal-push", "--bogus", "x"]],
    [["wal-push", "--repo"]],
    [["wal-push", "--repo", "/a", "--repo", "/b", "x"]],
    [["wal-fetch", "a"]],
    [["options"]],
    [[]],
  ])("leaves %j to commander", (argv) => {
    expect(parseHotArgs(argv)).toBeUndefined();
  });
});
