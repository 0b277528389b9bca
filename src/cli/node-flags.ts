/**
 * The Node.js flags a pgha process gets besides its arguments, as bin/pgha (the launcher)
 * gives them: backup, restore and drill run with a young generation of 4 MB, which keeps
 * a backup or restore of 100,000 files under 256 MB of RSS (see the launcher's comment).
 * Processes pgha starts itself with `process.execPath` (the scheduler's jobs) skip the
 * launcher, so they take the flags from here. The launcher's `case` line lists the same
 * commands (test/cli/launcher.test.ts holds the two together).
 */
export const SMALL_YOUNG_GENERATION_COMMANDS = ["backup", "restore", "drill"] as const;

/** Flags for node itself when it runs `pgha ...argv`. */
export function nodeFlagsFor(argv: readonly string[]): string[] {
  const heavy = argv.some((a) =>
    (SMALL_YOUNG_GENERATION_COMMANDS as readonly string[]).includes(a),
  );
  return heavy ? ["--max-semi-space-size=4"] : [];
}
