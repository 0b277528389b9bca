import { PghaError } from "../errors.js";

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
