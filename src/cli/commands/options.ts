import {
  type CommandName,
  FLAG_KEYS,
  FLAGS,
  type FlagSpec,
  flagDefaultText,
  flagDoc,
} from "../../config/flags.js";
import {
  DEFAULT_CONFIG_FILE,
  defaultText,
  fileKeyOf,
  OPTION_KEYS,
  OPTIONS,
  type OptionSpec,
} from "../../config/options.js";

/** Prints the option and flag tables: the same rows that README.md's reference shows. */
export async function optionsCommand(markdown: boolean): Promise<number> {
  process.stdout.write(`${renderOptions(markdown)}\n\n${renderFlags(markdown)}\n`);
  return 0;
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

/** Where the config-file key is not the flag name, it is said. */
const otherKey = (o: OptionSpec<unknown>) =>
  fileKeyOf(o) === o.name ? "" : ` (config file: \`"${fileKeyOf(o)}"\`)`;

/** The encryption settings have no flag: never on a command line (options.ts). */
const hasFlag = (o: OptionSpec<unknown>) => o.group !== "encryption";

/** How a setting is named in the table: its flag, or its config key where it has no flag. */
function settingName(o: OptionSpec<unknown>, markdown: boolean): string {
  if (hasFlag(o)) {
    return markdown
      ? `\`--${o.name} ${cell(o.placeholder)}\`${otherKey(o)}`
      : `--${o.name} ${o.placeholder}`;
  }
  return markdown
    ? `\`"${fileKeyOf(o)}": ${cell(o.placeholder)}\` (config file or environment, no flag)`
    : `"${fileKeyOf(o)}": ${o.placeholder} (config file or environment, no flag)`;
}

export function renderOptions(markdown: boolean): string {
  const rows = OPTION_KEYS.map((key) => OPTIONS[key]);
  if (markdown) {
    const lines = [
      "| flag / config key | environment | default | meaning |",
      "| --- | --- | --- | --- |",
      `| \`--config\` | \`PGHA_CONFIG\` | ${DEFAULT_CONFIG_FILE} if present | config file (JSON object of the keys below) |`,
      ...rows.map(
        (o) => `| ${settingName(o, true)} | \`${o.env}\` | ${defaultText(o)} | ${o.description} |`,
      ),
    ];
    return lines.join("\n");
  }
  return rows
    .map(
      (o) =>
        `${settingName(o, false)}\n    env ${o.env}${fileKeyOf(o) === o.name || !hasFlag(o) ? "" : `; config file "${fileKeyOf(o)}"`}; default ${defaultText(o)}\n    ${o.description}`,
    )
    .join("\n");
}

interface FlagRow {
  flag: string;
  commands: CommandName[];
  byDefault: string;
  meaning: string;
}

/** One row per flag and meaning: a flag that reads differently for some commands gets more. */
function flagRows(): FlagRow[] {
  const rows: FlagRow[] = [];
  const add = (flag: string, command: CommandName, meaning: string, byDefault: string) => {
    const row = rows.find((r) => r.flag === flag && r.meaning === meaning);
    if (row) row.commands.push(command);
    else rows.push({ flag, commands: [command], byDefault, meaning });
  };
  for (const key of FLAG_KEYS) {
    const spec: FlagSpec = FLAGS[key];
    for (const command of spec.commands) {
      const doc = flagDoc(spec, command);
      if (spec.kind === "switch") add(`--${spec.name}`, command, doc, "");
      else if (spec.kind === "negatable") {
        if (spec.positiveDoc !== undefined) {
          add(`--${spec.name}`, command, spec.positiveDoc, spec.default ? "yes" : "");
        }
        add(`--no-${spec.name}`, command, doc, spec.default ? "" : "yes");
      } else {
        add(`--${spec.name} ${spec.placeholder}`, command, doc, flagDefaultText(spec) ?? "");
      }
    }
  }
  return rows;
}

export function renderFlags(markdown: boolean): string {
  const rows = flagRows();
  if (markdown) {
    return [
      "| flag | commands | default | meaning |",
      "| --- | --- | --- | --- |",
      ...rows.map(
        (r) =>
          `| \`${cell(r.flag)}\` | ${r.commands.map((c) => `\`${c}\``).join(", ")} | ${r.byDefault} | ${cell(r.meaning)} |`,
      ),
    ].join("\n");
  }
  return rows
    .map(
      (r) =>
        `${r.flag}\n    ${r.commands.map((c) => `pgha ${c}`).join(", ")}${r.byDefault ? `; default ${r.byDefault}` : ""}\n    ${r.meaning}`,
    )
    .join("\n");
}
