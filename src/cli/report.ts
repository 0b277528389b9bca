import { EXIT_CODE_TABLE, PghaError } from "../errors.js";

/** One lowercase line and an optional HINT line for user errors; the stack for bugs. */
export function reportError(error: unknown): void {
  if (error instanceof PghaError) {
    process.stderr.write(`pgha: error: ${error.message}\n`);
    if (error.hint) process.stderr.write(`HINT: ${error.hint}\n`);
    return;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`pgha: internal error (please report it): ${text}\n`);
}

/** What a failed command prints to stdout with --json, beside the lines on stderr. */
export interface ErrorObject {
  error: { kind: string; message: string; hint: string | null; exitCode: number };
  [detail: string]: unknown;
}

/**
 * The error as JSON: `kind` is the exit code's name (README's exit-code table), the
 * same for every command; a PghaError's details (restore plan: the refusal) come first.
 */
export function errorObject(error: unknown, exitCode: number): ErrorObject {
  const kind = EXIT_CODE_TABLE.find((row) => row.code === exitCode)?.name ?? "internal";
  if (error instanceof PghaError) {
    return {
      ...error.details,
      error: { kind, message: error.message, hint: error.hint ?? null, exitCode },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { error: { kind, message, hint: null, exitCode } };
}

/** Whether the command line asks for JSON output (before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}
