/**
 * The logger the core receives (never a global). Lines go to stderr: PostgreSQL puts an
 * archive_command's stderr into the server log, so each line names its source ("pgha").
 * Every line has a time and a level:
 *   text  `2026-12-01T19:05:00.123Z INFO  pgha: message` (an error's hint on its own
 *         `HINT: ...` line below it, as the one-line error contract has it);
 *   json  one object a line: {"time", "level", "source", "message", "hint"?, ...fields}.
 * With --log-file, the same lines are also appended to that file. Loaded by wal-push and
 * wal-fetch: node built-ins only.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  openSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import type { LogFormat, LogLevel } from "./config/values.js";
import { describeSystemError } from "./errors.js";

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** Where log lines go besides stderr, and in which form. */
export interface LogOutput {
  format: LogFormat;
  /** An absolute path lines are appended to; undefined: stderr only. */
  file?: string | undefined;
}

export interface LogEntry {
  time: Date;
  level: LogLevel;
  /** Who writes: "pgha", "pgha archiver", "pgha scheduler". */
  source: string;
  message: string;
  hint?: string | undefined;
  /** More JSON fields (an error's kind and exit code); text shows only the message. */
  fields?: Record<string, string | number>;
}

export const TEXT_OUTPUT: LogOutput = { format: "text" };

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** The entry as written: one line (text: two with a hint), ending in a newline. */
export function formatLogEntry(entry: LogEntry, format: LogFormat): string {
  const time = entry.time.toISOString();
  if (format === "json") {
    const { source, message, hint, fields } = entry;
    const object = { time, level: entry.level, source, message, ...(hint ? { hint } : {}) };
    return `${JSON.stringify({ ...object, ...fields })}\n`;
  }
  const line = `${time} ${entry.level.toUpperCase().padEnd(5)} ${entry.source}: ${entry.message}\n`;
  return entry.hint ? `${line}HINT: ${entry.hint}\n` : line;
}

/** Writes an entry to stderr and, when one is set, appends it to the log file. */
export function writeLogEntry(entry: LogEntry, output: LogOutput): void {
  const text = formatLogEntry(entry, output.format);
  process.stderr.write(text);
  if (output.file) appendToLogFile(output.file, text, output.format);
}

export function stderrLogger(
  level: LogLevel,
  source = "pgha",
  output: LogOutput = TEXT_OUTPUT,
): Logger {
  const emit = (at: LogLevel) => (message: string) => {
    if (RANK[at] > RANK[level]) return;
    writeLogEntry({ time: new Date(), level: at, source, message }, output);
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

/** Open log files of this process by path; "failed": said once on stderr, not tried again. */
const files = new Map<string, number | "failed">();

/**
 * Appends with one write(2) on an O_APPEND descriptor, so lines of concurrent writers
 * (archive_command, the scheduler, its jobs) do not interleave. A log file that cannot be
 * written never fails the command (archiving must not stop over a log): it is said once on
 * stderr, which PostgreSQL keeps in its server log.
 */
function appendToLogFile(path: string, text: string, format: LogFormat): void {
  let fd = files.get(path);
  if (fd === undefined) {
    fd = openLogFile(path, format);
    files.set(path, fd);
  }
  if (fd === "failed") return;
  try {
    const data = Buffer.from(text);
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at);
  } catch (error) {
    files.set(path, "failed");
    closeQuietly(fd);
    logFileProblem(path, `cannot append to it: ${describeSystemError(error)}`, undefined, format);
  }
}

/**
 * Opens the log file for appending, creating it mode 0660. Root and the PostgreSQL user
 * (archive_command) both write one log file: a file root creates gets the owner and group
 * of its directory, so a log directory owned by postgres keeps the file writable by
 * postgres; in a directory root owns, root is told that other users cannot write it.
 */
export function openLogFile(
  path: string,
  format: LogFormat,
  euid: number | undefined = process.geteuid?.(),
): number | "failed" {
  let fd: number;
  try {
    const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL } = constants;
    fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0o660);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      logFileProblem(path, `cannot create it: ${describeSystemError(error)}`, undefined, format);
      return "failed";
    }
    try {
      return openSync(path, "a");
    } catch (error) {
      const owner = ownerOf(path);
      logFileProblem(
        path,
        `cannot append to it: ${describeSystemError(error)}${owner === undefined ? "" : `; it belongs to uid ${owner}`}`,
        "every user that runs pgha (root, and the PostgreSQL user for archive_command) must be able to write it: chown it to the PostgreSQL user and chmod 660 it",
        format,
      );
      return "failed";
    }
  }
  try {
    fchmodSync(fd, 0o660); // the umask took group write away
    if (euid === 0) {
      const dir = statSync(dirname(path));
      if (dir.uid !== 0 || dir.gid !== 0) fchownSync(fd, dir.uid, dir.gid);
      else
        logFileProblem(
          path,
          "created owned by root in a directory root owns: pgha run as another user (archive_command runs as the PostgreSQL user) cannot append to it",
          "put the log file in a directory that user owns, or chown the file to that user",
          format,
          "warn",
        );
    }
  } catch (error) {
    logFileProblem(
      path,
      `cannot set its owner or mode: ${describeSystemError(error)}`,
      undefined,
      format,
    );
  }
  return fd;
}

function logFileProblem(
  path: string,
  what: string,
  hint: string | undefined,
  format: LogFormat,
  level: LogLevel = "warn",
): void {
  const message = `log file ${path}: ${what}${level === "warn" && what.startsWith("cannot") ? "; logging to stderr only" : ""}`;
  process.stderr.write(
    formatLogEntry({ time: new Date(), level, source: "pgha", message, hint }, format),
  );
}

function ownerOf(path: string): number | undefined {
  try {
    return statSync(path).uid;
  } catch {
    return undefined;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already unusable
  }
}
