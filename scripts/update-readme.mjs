// Regenerates the generated parts of README.md (between <!-- NAME:start --> and
// <!-- NAME:end -->) from the code: the option and flag tables and the exit-code table.
// Run with `npm run docs` (builds first); test/unit/cli.test.ts checks they are in step.
import { readFileSync, writeFileSync } from "node:fs";
import { renderFlags, renderOptions } from "../dist/src/cli/commands/options.js";
import { EXIT_CODE_TABLE } from "../dist/src/errors.js";

const path = new URL("../README.md", import.meta.url);
let text = readFileSync(path, "utf8");
const sections = {
  options: renderOptions(true),
  flags: renderFlags(true),
  "exit-codes": [
    "| code | name | meaning |",
    "| --- | --- | --- |",
    ...EXIT_CODE_TABLE.map((r) => `| ${r.code} | ${r.name} | ${r.meaning} |`),
  ].join("\n"),
};
for (const [name, body] of Object.entries(sections)) {
  const pattern = new RegExp(`<!-- ${name}:start -->[\\s\\S]*?<!-- ${name}:end -->`);
  if (!pattern.test(text)) throw new Error(`README.md has no <!-- ${name}:start --> marker`);
  text = text.replace(pattern, `<!-- ${name}:start -->\n${body}\n<!-- ${name}:end -->`);
}
writeFileSync(path, text);
