/**
 * Progress for long commands: on a TTY one line rewritten in place (bytes done, rate,
 * ETA); otherwise a plain log line every 10 seconds.
 */
import type { Logger } from "../log.js";

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

const MiB = 1024 * 1024;

export function makeProgress(
  what: string,
  log: Logger,
  tty = process.stderr.isTTY === true,
): Progress {
  const started = Date.now();
  let last = 0;
  let shown = false;
  const render = (done: number, total: number) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 && total > done ? Math.round((total - done) / rate) : 0;
    const pct = total > 0 ? Math.min(100, (100 * done) / total).toFixed(0) : "?";
    return `${what}: ${(done / MiB).toFixed(1)} of ${(total / MiB).toFixed(1)} MiB (${pct}%), ${(rate / MiB).toFixed(1)} MiB/s, ETA ${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, "0")}`;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < (tty ? 200 : 10_000)) return;
      last = now;
      if (tty) {
        process.stderr.write(`\r${render(done, total)}\x1b[K`);
        shown = true;
      } else {
        log.info(render(done, total));
      }
    },
    finish() {
      if (shown) process.stderr.write("\n");
    },
  };
}
