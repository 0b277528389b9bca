/**
 * A minimal parser for the two commands PostgreSQL runs once per WAL file. It accepts only
 * the well-formed shapes (`--flag value`, `--flag=value` for flags of the option table,
 * `--config`, and exactly the positional arguments the command takes) and returns
 * undefined for anything else, which then goes to commander for its help and errors.
 * Saves loading commander (~15 ms) on every archive_command / restore_command call.
 */
import { OPTIONS, optionsInGroups, type SettingFlags } from "../config/options.js";
import { COMMANDS } from "./commands-table.js";

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
  const spec = COMMANDS[command];
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
  // wal-push and wal-fetch take no command flags: their arguments are all required.
  return positionals.length === spec.args.length ? { command, positionals, opts } : undefined;
}
