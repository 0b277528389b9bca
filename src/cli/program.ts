/**
 * The commander program, built from the command table (commands-table.ts), the flag table
 * (config/flags.ts) and the option table (config/options.ts). Each action parses the
 * command's flags into typed values and imports the command's implementation only then.
 * Loaded for everything but the plain wal-push / wal-fetch calls PostgreSQL makes (see
 * hot-args.ts).
 */
import { Command, Option } from "commander";
import {
  type CommandName,
  FLAGS,
  type FlagKey,
  type FlagSpec,
  flagDefaultText,
  flagDoc,
  flagsOf,
  resolveFlags,
} from "../config/flags.js";
import {
  DEFAULT_CONFIG_FILE,
  defaultText,
  fileKeyOf,
  OPTIONS,
  type OptionGroup,
  optionsInGroups,
  type SettingFlags,
} from "../config/options.js";
import { EXIT_CODE_TABLE, type ExitCodeName } from "../errors.js";
import { COMMANDS, type CommandSpec, PARENTS } from "./commands-table.js";
import { reportCommanderText } from "./report.js";

const VERSION = "0.1.0";

/** The exit-code table's rows for names; `meanings` words a row for one command. */
function exitCodeHelp(
  names: readonly ExitCodeName[],
  meanings: Partial<Record<ExitCodeName, string>> = {},
): string {
  const rows = EXIT_CODE_TABLE.filter((row) => names.includes(row.name));
  return `\nExit codes:\n${rows.map((r) => `  ${String(r.code).padStart(3)}  ${meanings[r.name] ?? r.meaning}`).join("\n")}\n`;
}

function helpAfter(
  help: string | undefined,
  codes: readonly ExitCodeName[],
  meanings?: Partial<Record<ExitCodeName, string>>,
): string {
  const exitCodes = exitCodeHelp(codes, meanings);
  return help === undefined ? exitCodes : `\n${help}\n${exitCodes}`;
}

/** Help headings of the setting groups: a command's own flags stay under "Options:". */
const GROUP_HEADINGS: Record<OptionGroup, string> = {
  repository: "Repository options:",
  s3: "S3 options:",
  pgdata: "Data directory options:",
  postgres: "PostgreSQL options:",
  wal: "WAL archiving options:",
  walSpeed: "Asynchronous archiving and prefetch options:",
  encryption: "Encryption settings (config file or environment only):",
  parallel: "Parallelism options:",
  // Settings of backup create alone: listed with its own flags.
  backup: "Options:",
  retention: "Retention options:",
  window: "Point-in-time window options:",
  schedule: "Scheduler options:",
  general: "General options:",
};

/**
 * Groups whose flags help names in one line instead of describing each (they are still
 * accepted): the S3 settings apply to every command that opens the repository, and 14
 * lines of them on every command hid what the command itself takes.
 */
const COMPACT_GROUPS: readonly OptionGroup[] = ["s3"];

/** The one line help shows for a compact group: its flags, and where they are described. */
export function compactGroupHelp(group: OptionGroup): string {
  const flags = optionsInGroups([group]).map((key) => `--${OPTIONS[key].name}`);
  const lines: string[] = [];
  for (const flag of flags) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + flag.length < 78)
      lines[lines.length - 1] = `${last} ${flag}`;
    else lines.push(`  ${flag}`);
  }
  const heading = GROUP_HEADINGS[group].replace(/:$/, "");
  return `${heading} (for s3:// repositories; 'pgha options' describes each):\n${lines.join("\n")}`;
}

/** The setting flags and --config; returns the commander attribute names they fill. */
function addSettings(command: Command, groups: readonly OptionGroup[]): string[] {
  if (groups.length === 0) return [];
  const keys = optionsInGroups(groups);
  for (const key of keys) {
    const spec = OPTIONS[key];
    const option = new Option(
      `--${spec.name} ${spec.placeholder}`,
      `${spec.description} [env ${spec.env}${fileKeyOf(spec) === spec.name ? "" : `; config file "${fileKeyOf(spec)}"`}; default ${defaultText(spec)}]`,
    ).helpGroup(GROUP_HEADINGS[spec.group]);
    command.addOption(COMPACT_GROUPS.includes(spec.group) ? option.hideHelp() : option);
  }
  // Last: help shows the groups in the order their first option was added.
  command.addOption(
    new Option(
      "--config <file>",
      `config file (JSON) [env PGHA_CONFIG; default ${DEFAULT_CONFIG_FILE} if present]`,
    ).helpGroup(GROUP_HEADINGS.general),
  );
  const compact = COMPACT_GROUPS.filter((g) => groups.includes(g));
  if (compact.length > 0) {
    command.addHelpText("after", `\n${compact.map(compactGroupHelp).join("\n")}`);
  }
  // The option table's keys are commander's attribute names (test/unit/config.test.ts).
  return ["config", ...keys];
}

/** The command flags; returns the commander attribute name of each flag key. */
function addFlags(command: Command, name: CommandName): Map<FlagKey, string> {
  const attributes = new Map<FlagKey, string>();
  for (const key of flagsOf(name)) {
    const spec: FlagSpec = FLAGS[key];
    const doc = flagDoc(spec, name);
    let option: Option;
    if (spec.kind === "switch") option = new Option(`--${spec.name}`, doc);
    else if (spec.kind === "negatable") {
      if (spec.positiveDoc !== undefined) {
        const positive = `${spec.positiveDoc}${spec.default ? " (the default)" : ""}`;
        command.addOption(new Option(`--${spec.name}`, positive));
      }
      const negative = `${doc}${!spec.default && spec.positiveDoc ? " (the default)" : ""}`;
      option = new Option(`--no-${spec.name}`, negative);
    } else {
      const byDefault = flagDefaultText(spec);
      option = new Option(
        `--${spec.name} ${spec.placeholder}`,
        byDefault === undefined ? doc : `${doc} [default ${byDefault}]`,
      );
      if (spec.kind === "list") {
        option.argParser((value: string, previous: string[] = []) => [...previous, value]);
      }
    }
    command.addOption(option);
    attributes.set(key, option.attributeName());
  }
  return attributes;
}

function addCommand<C extends CommandName>(
  parent: Command,
  name: C,
  spec: CommandSpec<C>,
  setCode: (code: number) => void,
): void {
  const words = name.split(" ");
  const command = parent
    .command(words.at(-1) ?? name, spec.isDefault ? { isDefault: true } : {})
    .description(helpParagraph(spec.description));
  for (const arg of spec.args) command.argument(arg.name, arg.doc);
  const flags = addFlags(command, name);
  const settings = addSettings(command, spec.groups);
  command.addHelpText("after", helpAfter(spec.help, spec.exitCodes, spec.exitMeanings));
  command.action(async (...args: unknown[]) => {
    const given = (args.at(-1) as Command).opts();
    const values: Partial<Record<FlagKey, unknown>> = {};
    for (const [key, attribute] of flags) values[key] = given[attribute];
    const settingFlags: SettingFlags = {};
    for (const key of settings) {
      const value = given[key];
      if (typeof value === "string") settingFlags[key as keyof SettingFlags] = value;
    }
    const opts = { ...resolveFlags(name, values), settings: settingFlags };
    const positionals = args.slice(0, spec.args.length) as (string | undefined)[];
    setCode(await spec.run(positionals, opts));
  });
}

/**
 * A command description as one paragraph: the table breaks its lines for the source's
 * width, and commander wraps again to the terminal's, so kept breaks cut lines short.
 */
function helpParagraph(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

/** `commands` is the command table; tests pass one whose commands record what they got. */
export function buildProgram(
  setCode: (code: number) => void,
  commands: typeof COMMANDS = COMMANDS,
): Command {
  const program = new Command("pgha")
    .description(
      "PostgreSQL WAL archiving, backups and point-in-time recovery to S3-compatible or local storage",
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeErr: reportCommanderText,
    })
    .showHelpAfterError("HINT: run the command with --help for its usage")
    .addHelpText(
      "after",
      `${exitCodeHelp(EXIT_CODE_TABLE.map((r) => r.name))}\nPrecedence: flags > environment (PGHA_*) > config file > defaults. 'pgha options' lists every setting.\n`,
    );
  const parents = new Map<string, Command>();
  for (const name of Object.keys(commands) as CommandName[]) {
    const words = name.split(" ");
    let parent = program;
    if (words.length === 2) {
      const word = words[0] ?? "";
      const known = parents.get(word);
      if (known) parent = known;
      else {
        const spec = PARENTS[word];
        if (spec === undefined) throw new Error(`command table: no parent '${word}'`);
        parent = program.command(word).description(helpParagraph(spec.description));
        if (spec.exitCodes) parent.addHelpText("after", helpAfter(spec.help, spec.exitCodes));
        parents.set(word, parent);
      }
    }
    addCommand(parent, name, commands[name] as CommandSpec<CommandName>, setCode);
  }
  return program;
}
