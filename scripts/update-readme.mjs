// Regenerates the generated parts of README.md (between <!-- NAME:start --> and
// <!-- NAME:end -->) from the code: the option and flag tables and the exit-code table.
// Run with `npm run docs` (builds first); test/integration/cli.test.ts checks they are in step.
// Also the environment line of bin/pgha (below).
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

// bin/pgha's fast path builds a call's id from the same environment as CALL_ID_ENV
// (src/wal/spool.ts); test/cli/launcher.test.ts checks the line.
const { CALL_ID_ENV } = await import("../dist/src/wal/spool.js");
const launcher = new URL("../bin/pgha", import.meta.url);
const script = readFileSync(launcher, "utf8");
const envLine = `  id="$id|env|${CALL_ID_ENV.map((name) => `\${${name}-}`).join("|")}"`;
writeFileSync(
  launcher,
  script.replace(/^ {2}id="\$id\|env\|.*"$/m, () => envLine),
);
