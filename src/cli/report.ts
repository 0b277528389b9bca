import { EXIT_CODE_TABLE, EXIT_CODES, exitCodeOf, PghaError } from "../errors.js";
import { type LogOutput, writeLogEntry } from "../log.js";

/**
 * How this process logs, once its settings are read (loadContext); before that (a bad
 * flag or config file), PGHA_LOG_FORMAT and PGHA_LOG_FILE as they are in the environment.
 */
let output: LogOutput | undefined;

export function useLogOutput(settings: LogOutput): void {
  output = settings;
}

function currentOutput(): LogOutput {
  if (output) return output;
  const file = process.env.PGHA_LOG_FILE;
  return {
    format: process.env.PGHA_LOG_FORMAT?.trim().toLowerCase() === "json" ? "json" : "text",
    file: file?.startsWith("/") ? file : undefined,
  };
}

/**
 * One error line and an optional HINT line for user errors; the stack for bugs. In json
 * format one object with the error's kind and exit code (and its hint, or the stack).
 */
export function reportError(error: unknown): void {
  const time = new Date();
  if (error instanceof PghaError) {
    const at = currentOutput();
    writeLogEntry(
      {
        time,
        level: "error",
        source: "pgha",
        // text keeps `pgha: error: ...` after the time and level; json has a level field.
        message: at.format === "json" ? error.message : `error: ${error.message}`,
        hint: error.hint,
        fields: { kind: error.exit, exitCode: exitCodeOf(error) },
      },
      at,
    );
    return;
  }
  const at = currentOutput();
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const message = error instanceof Error ? error.message : String(error);
  writeLogEntry(
    {
      time,
      level: "error",
      source: "pgha",
      message: `internal error (please report it): ${at.format === "json" ? message : stack}`,
      fields: {
        kind: "internal",
        exitCode: EXIT_CODES.internal,
        ...(at.format === "json" ? { stack } : {}),
      },
    },
    at,
  );
}

/**
 * A line a command always writes to stderr whatever --log-level says (what prune would
 * free, why wal-fetch exits as it does), in the log's form.
 */
export function reportNote(message: string, level: "info" | "warn" = "info"): void {
  writeLogEntry({ time: new Date(), level, source: "pgha", message }, currentOutput());
}

/**
 * What commander writes to stderr: its parse errors ("error: ...") as error lines in the
 * log's form; help text as it is.
 */
export function reportCommanderText(text: string): void {
  if (!text.startsWith("error: ")) {
    // In json format every stderr line is an object: the hint to run --help is left out.
    if (currentOutput().format === "json" && text.startsWith("HINT: run the command with --help"))
      return;
    process.stderr.write(text);
    return;
  }
  writeLogEntry(
    {
      time: new Date(),
      level: "error",
      source: "pgha",
      message: currentOutput().format === "json" ? text.trimEnd().slice(7) : text.trimEnd(),
      fields: { kind: "usage", exitCode: EXIT_CODES.usage },
    },
    currentOutput(),
  );
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
