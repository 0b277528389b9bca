/**
 * The Node.js flags a pgha process gets besides its arguments, as bin/pgha (the launcher)
 * gives them: backup, restore and drill run with a young generation of 4 MB and
 * --optimize-for-size; that keeps a backup or restore of 100,000 files
 * under 256 MB of RSS (the launcher's comment says why). Processes pgha starts itself
 * with `process.execPath` (the scheduler's jobs) skip the launcher, so they take the
 * flags from here. The launcher's `case` lines list the same (test/cli/launcher.test.ts
 * holds the two together).
 */
export const NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  restore: ["--max-semi-space-size=4", "--optimize-for-size"],
  drill: ["--max-semi-space-size=4", "--optimize-for-size"],
  backup: ["--max-semi-space-size=4", "--optimize-for-size"],
};

/** Flags for node itself when it runs `pgha ...argv`: the first argument that names some. */
export function nodeFlagsFor(argv: readonly string[]): string[] {
  for (const a of argv) {
    const flags = Object.hasOwn(NODE_FLAGS, a) ? NODE_FLAGS[a] : undefined;
    if (flags) return [...flags];
  }
  return [];
}
