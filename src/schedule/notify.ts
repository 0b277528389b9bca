/**
 * The scheduler's notification on a failed job (--on-failure, a job's "onFailure"): the
 * environment the command gets, and the message it names, the last error line the job
 * wrote to stderr, in either log format.
 */
import { constants } from "node:os";

export interface JobOutcome {
  job: string;
  code: number | null;
  signal: string | null;
  durationMs: number;
  /** The job's last error line (errorMessageOf), if it wrote one. */
  lastError: string | undefined;
}

/** The exit code as a shell reports it: 128 + the signal's number for a killed job. */
export function exitCodeOfOutcome(outcome: Pick<JobOutcome, "code" | "signal">): number {
  if (outcome.code !== null) return outcome.code;
  const number = outcome.signal ? constants.signals[outcome.signal as NodeJS.Signals] : undefined;
  return number === undefined ? 1 : 128 + number;
}

/** What the notification command finds in its environment. */
export function notificationEnv(outcome: JobOutcome): Record<string, string> {
  const code = exitCodeOfOutcome(outcome);
  return {
    PGHA_JOB: outcome.job,
    PGHA_EXIT_CODE: String(code),
    PGHA_MESSAGE:
      outcome.lastError ??
      (outcome.signal ? `killed by ${outcome.signal}` : `exited with code ${code}`),
    PGHA_JOB_DURATION: (outcome.durationMs / 1000).toFixed(1),
  };
}

/**
 * The message of an error line pgha writes: text `<time> ERROR pgha: error: ...` (the part
 * after the level), a JSON line with level "error" (its message), or a line without a time
 * (`pgha: error: ...`, `pgha: internal error ...`, as the launcher writes); else undefined.
 */
export function errorMessageOf(line: string): string | undefined {
  const text = line.trim();
  if (text.startsWith("{")) {
    try {
      const entry = JSON.parse(text) as { level?: unknown; message?: unknown };
      return entry.level === "error" && typeof entry.message === "string"
        ? entry.message
        : undefined;
    } catch {
      return undefined;
    }
  }
  const leveled = /^\S+ ERROR +(.*)$/.exec(text);
  if (leveled) return leveled[1];
  return /^pgha[\w ]*: (error|internal error)\b/.test(text) ? text : undefined;
}

/** Follows a job's stderr as it arrives, chunk by chunk, and keeps its last error line. */
export class LastErrorLine {
  private partial = "";
  private found: string | undefined;

  push(chunk: string): void {
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.found = errorMessageOf(line) ?? this.found;
  }

  /** After the last chunk: the last error line, if any. */
  end(): string | undefined {
    if (this.partial !== "") this.push("\n");
    return this.found;
  }
}
