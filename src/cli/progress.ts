/**
 * Progress for long commands. On a terminal: one line rewritten in place (a bar, bytes
 * done of the total, rate, ETA), redrawn at most 5 times a second, drawn a last time and
 * ended with a newline by finish(); log lines written meanwhile go through `log`, which
 * clears the line first and redraws it after, so nothing is glued onto it. Not on a
 * terminal (a log): no bar, one plain summary line every 10 seconds.
 *
 * A small implementation rather than a progress-bar library: the line must share stderr
 * with pgha's logger (cleared and redrawn around each log line) and the no-terminal form
 * is a log line; the libraries draw on their own stream and have no such hook.
 */
import { formatBytes, formatDuration } from "../human-units.js";
import type { Logger } from "../log.js";

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
  /**
   * The command's result on stdout (a backup id): the line is finished first, so the
   * result is not glued onto the bar when stdout and stderr are the same terminal.
   */
  print(line: string): void;
  /** The command's logger, made safe to use while the line is drawn. */
  readonly log: Logger;
}

/** The rate and ETA are measured from the first bytes, and shown only after this long. */
const ETA_AFTER_MS = 2000;
const BAR_WIDTH = 20;

export interface ProgressSample {
  done: number;
  total: number;
  /** Milliseconds since the first update (when bytes started to flow). */
  elapsedMs: number;
  /** Bytes done at the first update: not part of the measured rate. */
  doneAtFirst: number;
}

/**
 * Seconds left at the measured rate, or undefined while there is nothing to go on: too
 * early, nothing moved, or the total already passed (files grow during a backup).
 */
export function estimateSecondsLeft(s: ProgressSample): number | undefined {
  if (s.elapsedMs < ETA_AFTER_MS || s.done >= s.total) return undefined;
  const rate = (s.done - s.doneAtFirst) / (s.elapsedMs / 1000);
  if (!(rate > 0)) return undefined;
  return (s.total - s.done) / rate;
}

/** Whole percent, 100 only once done reaches the total. */
export function percentDone(done: number, total: number): number {
  if (total <= 0 || done >= total) return 100;
  return Math.min(99, Math.floor((100 * done) / total));
}

/** `backup: 12.0 MiB of 97.4 MiB (12%), 3.1 MiB/s, ETA 27s`, with a bar in front on a terminal. */
export function renderProgressLine(
  what: string,
  s: ProgressSample,
  bar: boolean,
  finished = false,
): string {
  const pct = percentDone(s.done, s.total);
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? (s.done - s.doneAtFirst) / seconds : 0;
  const left = estimateSecondsLeft(s);
  const filled = Math.round((BAR_WIDTH * pct) / 100);
  const drawn = bar ? `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ` : "";
  const eta = finished
    ? `took ${formatDuration(seconds)}`
    : left === undefined
      ? "ETA --"
      : `ETA ${formatDuration(left)}`;
  return `${what}: ${drawn}${formatBytes(s.done)} of ${formatBytes(s.total)} (${pct}%), ${formatBytes(rate)}/s, ${eta}`;
}

export function makeProgress(
  what: string,
  log: Logger,
  tty = process.stderr.isTTY === true,
  now: () => number = Date.now,
): Progress {
  let first: { at: number; done: number } | undefined;
  let latest = { done: 0, total: 0 };
  let drawnAt = Number.NEGATIVE_INFINITY;
  let shown = false;
  const sample = (): ProgressSample => ({
    ...latest,
    elapsedMs: first ? now() - first.at : 0,
    doneAtFirst: first?.done ?? 0,
  });
  const draw = (finished = false) => {
    process.stderr.write(`\r${renderProgressLine(what, sample(), true, finished)}\x1b[K`);
    shown = true;
  };
  const clear = () => {
    if (shown) process.stderr.write("\r\x1b[K");
  };
  const around =
    (write: (message: string) => void) =>
    (message: string): void => {
      if (!tty || !shown) {
        write(message);
        return;
      }
      clear();
      write(message);
      draw();
    };
  const finish = (): void => {
    if (!shown) return;
    draw(true); // the last numbers, not the last throttled ones
    process.stderr.write("\n");
    shown = false;
  };
  return {
    update(done, total) {
      const at = now();
      if (first === undefined) {
        first = { at, done };
        if (!tty) drawnAt = at; // the first summary after 10 seconds, not at 0 bytes
      }
      latest = { done, total };
      if (at - drawnAt < (tty ? 200 : 10_000)) return;
      drawnAt = at;
      if (tty) draw();
      else log.info(renderProgressLine(what, sample(), false));
    },
    finish,
    print(line) {
      finish();
      process.stdout.write(`${line}\n`);
    },
    log: {
      error: around((m) => log.error(m)),
      warn: around((m) => log.warn(m)),
      info: around((m) => log.info(m)),
      debug: around((m) => log.debug(m)),
    },
  };
}
