import { DEFAULT_CONFIG_FILE, defaultText, OPTION_KEYS, OPTIONS } from "../../config/options.js";

/** Prints the option table: the same rows that README.md's reference shows. */
export function optionsCommand(markdown: boolean): number {
  process.stdout.write(`${renderOptions(markdown)}\n`);
  return 0;
}

export function renderOptions(markdown: boolean): string {
  const rows = OPTION_KEYS.map((key) => OPTIONS[key]);
  if (markdown) {
    const lines = [
      "| flag / config key | environment | default | meaning |",
      "| --- | --- | --- | --- |",
      `| \`--config\` | \`PGHA_CONFIG\` | ${DEFAULT_CONFIG_FILE} if present | config file (JSON object of the keys below) |`,
      ...rows.map(
        (o) =>
          `| \`--${o.name} ${o.placeholder.replace(/\|/g, "\\|")}\` | \`${o.env}\` | ${defaultText(o)} | ${o.description} |`,
      ),
    ];
    return lines.join("\n");
  }
  return rows
    .map(
      (o) =>
        `--${o.name} ${o.placeholder}\n    env ${o.env}; default ${defaultText(o)}\n    ${o.description}`,
    )
    .join("\n");
}
