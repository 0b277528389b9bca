/**
 * The two commands PostgreSQL runs once per WAL file: their rows of the command table, and
 * a minimal parser for them. It accepts only the well-formed shapes (`--flag value`,
 * `--flag=value` for flags of the option table, `--config`, and exactly the positional
 * arguments the command takes) and returns undefined for anything else, which then goes to
 * commander for its help and errors. Saves loading commander (~15 ms) and the rest of the
 * command table on every archive_command / restore_command call.
 */
import { OPTIONS, optionsInGroups, type SettingFlags } from "../config/options.js";
import type { ExitCodeName } from "../errors.js";
import type { Argument, CommandSpec } from "./commands-table.js";

const arg = (name: string, doc: string): Argument => ({ name, doc });

const PUSH_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "clusterMismatch",
  "walConflict",
  "integrity",
  "storage",
  "localIo",
  "internal",
];

/** wal-push and wal-fetch take settings only, no command flags. */
export const HOT_COMMANDS: {
  readonly "wal-push": CommandSpec<"wal-push">;
  readonly "wal-fetch": CommandSpec<"wal-fetch">;
} = {
  "wal-push": {
    description:
      "archive one WAL file; use as archive_command = 'pgha wal-push %p'.\n" +
      "Exits 0 only after the file is stored and verified, or already archived with identical content.",
    args: [arg("<path>", "the WAL file (PostgreSQL's %p, relative to the data directory)")],
    groups: ["repository", "s3", "wal", "walSpeed", "parallel", "general"],
    exitCodes: PUSH_CODES,
    run: async ([path], opts) =>
      (await import("./commands/wal-push.js")).walPushCommand(path ?? "", opts),
  },
  "wal-fetch": {
    description:
      "restore one archived WAL file; use as restore_command = 'pgha wal-fetch %f %p'.\n" +
      "The file is decompressed beside <dest>, checksum-verified, fsynced and renamed into place.",
    args: [
      arg("<name>", "WAL file name (PostgreSQL's %f)"),
      arg("<dest>", "where to write it (PostgreSQL's %p, relative to the working directory)"),
    ],
    groups: ["repository", "s3", "pgdata", "wal", "walSpeed", "general"],
    exitCodes: ["ok", "notFound", "failClosed"],
    exitMeanings: {
      ok: "delivered and verified",
      notFound:
        'not in the repository (PostgreSQL: "not available"); also any failure when\n       standby.signal is present in --pgdata, so a standby simply retries',
      failClosed:
        "storage, integrity or configuration failure during archive recovery: PostgreSQL\n       stops recovery rather than ending it early and promoting at the wrong point",
    },
    run: async ([name, dest], opts) =>
      (await import("./commands/wal-fetch.js")).walFetchCommand(name ?? "", dest ?? "", opts),
  },
};

export interface HotArgs {
  command: "wal-push" | "wal-fetch";
  positionals: string[];
  /** Flag values keyed like commander's opts(): option-table keys, plus config. */
  opts: SettingFlags;
}

export function parseHotArgs(argv: readonly string[]): HotArgs | undefined {
  const command = argv[0];
  if (command !== "wal-push" && command !== "wal-fetch") return undefined;
  const flags = new Map<string, string>([["config", "config"]]);
  const spec = HOT_COMMANDS[command];
  for (const key of optionsInGroups(spec.groups)) flags.set(OPTIONS[key].name, key);
  const positionals: string[] = [];
  const opts: Record<string, string> = {};
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") return undefined;
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const key = flags.get(name);
    if (key === undefined) return undefined;
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined || value.startsWith("-")) return undefined;
    }
    if (key in opts) return undefined;
    opts[key] = value;
  }
  // Their arguments are all required.
  return positionals.length === spec.args.length ? { command, positionals, opts } : undefined;
}
