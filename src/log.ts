/**
 * The logger the core receives (never a global). Lines go to stderr: PostgreSQL puts an
 * archive_command's stderr into the server log, so each line is prefixed with "pgha".
 */
import type { LogLevel } from "./config/values.js";

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** With timestamps, for a background process writing its own log file. */
export function stderrLogger(level: LogLevel, prefix = "pgha", timestamps = false): Logger {
  const emit = (at: LogLevel) => (message: string) => {
    if (RANK[at] > RANK[level]) return;
    const time = timestamps ? `${new Date().toISOString()} ` : "";
    process.stderr.write(`${time}${prefix}: ${at === "info" ? "" : `${at}: `}${message}\n`);
  };
  return { error: emit("error"), warn: emit("warn"), info: emit("info"), debug: emit("debug") };
}

/** Collects lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (at: LogLevel) => (message: string) => {
    lines.push(`${at}: ${message}`);
  };
  return {
    lines,
    error: push("error"),
    warn: push("warn"),
    info: push("info"),
    debug: push("debug"),
  };
}
