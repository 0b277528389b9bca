/**
 * Runs the built CLI the way PostgreSQL does: a fresh process per call, through the shell
 * launcher bin/pgha (its fast paths included), with this test run's node (PGHA_NODE).
 */
import { join } from "node:path";
import { type RunResult, runCommand } from "./pg-cluster.js";

export const REPO_ROOT = join(import.meta.dirname, "..", "..");
export const PGHA_BIN = join(REPO_ROOT, "bin", "pgha");
/** The Node.js entry the launcher runs; for processes started without the launcher. */
export const PGHA_ENTRY = join(REPO_ROOT, "bin", "pgha.mjs");

/** The command line to put into archive_command / restore_command. */
export function pghaCommandLine(args: string): string {
  return `PGHA_NODE='${process.execPath}' '${PGHA_BIN}' ${args}`;
}

export function runPgha(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; asServerUser?: boolean } = {},
): Promise<RunResult> {
  // Tests must not pick up the caller's PGHA_* settings (an empty value counts as unset).
  const clean: Record<string, string> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
  return runCommand(PGHA_BIN, args, {
    ...options,
    env: { ...clean, PGHA_NODE: process.execPath, ...options.env },
  });
}
