/** The flag table and the command table: what commands receive, defaults as documented. */
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/commands-table.js";
import { buildProgram } from "../../src/cli/program.js";
import {
  type CommandName,
  FLAG_KEYS,
  FLAGS,
  type FlagSpec,
  flagDefaultText,
  flagsOf,
  resolveFlags,
} from "../../src/config/flags.js";
import { OPTIONS, optionsInGroups } from "../../src/config/options.js";
import { UsageError } from "../../src/errors.js";

const NAMES = Object.keys(COMMANDS) as CommandName[];

/** Runs argv through commander with every command replaced by one that records its call. */
async function received(
  argv: string[],
): Promise<{ command: CommandName; args: unknown[]; opts: Record<string, unknown> }> {
  let call: { command: CommandName; args: unknown[]; opts: Record<string, unknown> } | undefined;
  const recording = Object.fromEntries(
    NAMES.map((command) => [
      command,
      {
        ...COMMANDS[command],
        run: async (args: unknown[], opts: Record<string, unknown>) => {
          call = { command, args, opts };
          return 0;
        },
      },
    ]),
  ) as unknown as typeof COMMANDS;
  await buildProgram(() => undefined, recording).parseAsync(argv, { from: "user" });
  if (!call) throw new Error("no command ran");
  return call;
}

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

describe("command flags", () => {
  it.each(
    NAMES.flatMap((command) =>
      flagsOf(command).map((key): [CommandName, string] => [command, key]),
    ),
  )("%s gets --%s as documented when it is not given", async (command, key) => {
    const spec: FlagSpec = FLAGS[key as keyof typeof FLAGS];
    const args = COMMANDS[command].args.filter((a) => a.name.startsWith("<")).map(() => "x");
    const { opts } = await received([...command.split(" "), ...args]);
    const value = opts[key];
    const text = flagDefaultText(spec);
    if (spec.kind === "switch") expect(value).toBe(false);
    else if (spec.kind === "negatable") expect(value).toBe(spec.default);
    else if (spec.kind === "list") expect(value).toEqual([]);
    else if (typeof spec.default === "string") {
      // A literal default: help shows this very text, and the command gets it parsed.
      expect(value).toEqual(spec.parse ? spec.parse(spec.default) : spec.default);
      expect((await helpOf(command.split(" "))).replace(/\s+/g, " ")).toContain(
        `[default ${text}]`,
      );
    } else if (spec.default !== undefined) {
      expect(value).toEqual(expect.anything());
      expect(await helpOf(command.split(" "))).toContain(`[default ${text}]`);
    } else expect(value).toBeUndefined();
  });

  it("documents the literal defaults as they are", () => {
    expect(resolveFlags("schedule show", {}).count).toBe(5);
    expect(resolveFlags("drill run", {}).timeout).toBe(3_600_000);
    expect(resolveFlags("dump create", {}).rolePasswords).toBe(true);
    expect(resolveFlags("restore run", {}).archive).toBe(false);
    const before = Date.now();
    expect(Date.parse(resolveFlags("prune", {}).now)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("hands commands typed values, parsed at the command line", async () => {
    expect(await received(["dump", "--db", "a", "--db", "b", "--no-role-passwords"])).toMatchObject(
      {
        command: "dump create",
        opts: { databases: ["a", "b"], rolePasswords: false, pin: false, label: undefined },
      },
    );
    expect(await received(["dump", "restore", "latest", "--db", "a"])).toMatchObject({
      command: "dump restore",
      args: ["latest"],
      opts: { db: "a", toDb: undefined, globals: false },
    });
    expect((await received(["restore", "--archive"])).opts.archive).toBe(true);
    expect((await received(["restore", "--no-archive"])).opts.archive).toBe(false);
    expect(await received(["drill", "--timeout", "30m", "--json", "--repo", "/r"])).toMatchObject({
      command: "drill run",
      opts: { timeout: 1_800_000, json: true, keep: false, settings: { repo: "/r" } },
    });
    expect(
      await received(["schedule", "show", "--count", "12", "--config", "/etc/p.json"]),
    ).toMatchObject({ opts: { count: 12, settings: { config: "/etc/p.json" } } });
    expect(
      await received(["backup", "fetch", "latest", "/d", "--tablespace-map", "a=/x"]),
    ).toMatchObject({ args: ["latest", "/d"], opts: { tablespaceMap: ["a=/x"] } });
    expect(await received(["retention", "simulate"])).toMatchObject({ args: [undefined] });
    // verify checks WAL continuity over the window prune keeps: the same two settings.
    expect(
      await received(["verify", "--pitr-window", "36h", "--retention-zone", "Europe/Paris"]),
    ).toMatchObject({
      command: "verify",
      opts: { settings: { pitrWindow: "36h", retentionZone: "Europe/Paris" } },
    });
  });

  it.each([
    ["schedule show", { count: "0" }, "--count '0' is not 1-1000", "for example --count 10"],
    ["schedule show", { count: "x" }, "--count 'x' is not 1-1000", "for example --count 10"],
    ["drill run", { timeout: "soon" }, "--timeout 'soon' is not a duration", "for example 30m"],
    ["standby", { delay: "4 h" }, "--delay '4 h' is not a duration", "for example 30s, 15m or 4h"],
    ["prune", { now: "yesterday" }, "--now 'yesterday' is not an ISO 8601 time", "--now 2026"],
  ] as const)("%s refuses %j in one line naming the flag", (command, given, message, hint) => {
    const attempt = () => resolveFlags(command, given);
    expect(attempt).toThrow(UsageError);
    try {
      attempt();
    } catch (error) {
      expect((error as UsageError).message).toBe(message);
      expect((error as UsageError).hint).toContain(hint);
    }
  });

  it("keeps a standby's --delay as written (its summary repeats it)", () => {
    expect(resolveFlags("standby", { delay: "4h" }).delay).toBe("4h");
  });

  it("gives no command two flags of one name, and no flag a setting's name", () => {
    for (const command of NAMES) {
      const names = [
        ...flagsOf(command).map((key) => FLAGS[key].name),
        ...optionsInGroups(COMMANDS[command].groups).map((key) => OPTIONS[key].name),
      ];
      expect(new Set(names).size, command).toBe(names.length);
    }
    for (const key of FLAG_KEYS) expect(FLAGS[key].commands.length, key).toBeGreaterThan(0);
  });
});
