/** Progress: a sane ETA, 100% only when done, no bar and no glued lines in a log. */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  estimateSecondsLeft,
  makeProgress,
  percentDone,
  renderProgressLine,
} from "../../src/cli/progress.js";
import { memoryLogger } from "../../src/log.js";

const MiB = 2 ** 20;

describe("estimateSecondsLeft", () => {
  it("measures the rate from the first bytes, not from when the command started", () => {
    // The 'ETA 136012:52': a checkpoint wait before any byte moved was counted as
    // transfer time. 100 MiB of 1000 MiB in 10 s after the first update: 90 s left.
    expect(
      estimateSecondsLeft({
        done: 100 * MiB,
        total: 1000 * MiB,
        elapsedMs: 10_000,
        doneAtFirst: 0,
      }),
    ).toBeCloseTo(90);
    // Bytes already done at the first update are not part of the rate.
    expect(
      estimateSecondsLeft({
        done: 20 * MiB,
        total: 30 * MiB,
        elapsedMs: 5000,
        doneAtFirst: 10 * MiB,
      }),
    ).toBeCloseTo(5);
  });

  it("gives no estimate too early, without movement, or past the total", () => {
    const s = { total: 100, doneAtFirst: 0 };
    expect(estimateSecondsLeft({ ...s, done: 1, elapsedMs: 500 })).toBeUndefined();
    expect(estimateSecondsLeft({ ...s, done: 0, elapsedMs: 60_000 })).toBeUndefined();
    expect(estimateSecondsLeft({ ...s, done: 120, elapsedMs: 60_000 })).toBeUndefined();
  });
});

describe("percentDone and the line", () => {
  it("shows 100% only once done reaches the total, and the ETA as a duration", () => {
    expect([percentDone(0, 10), percentDone(999, 1000), percentDone(1000, 1000)]).toEqual([
      0, 99, 100,
    ]);
    expect(percentDone(11, 10)).toBe(100);
    const line = renderProgressLine(
      "backup",
      { done: 100 * MiB, total: 1000 * MiB, elapsedMs: 10_000, doneAtFirst: 0 },
      true,
    );
    expect(line).toBe(
      "backup: [##------------------] 100.0 MiB of 1000.0 MiB (10%), 10.0 MiB/s, ETA 1m30s",
    );
    const finished = renderProgressLine(
      "fetch",
      { done: 10 * MiB, total: 10 * MiB, elapsedMs: 125_000, doneAtFirst: 0 },
      false,
      true,
    );
    expect(finished).toBe("fetch: 10.0 MiB of 10.0 MiB (100%), 81.9 KiB/s, took 2m05s");
  });
});

describe("makeProgress", () => {
  afterEach(() => vi.restoreAllMocks());

  function capture(): string[] {
    const writes: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
      writes.push(String(chunk));
      return true;
    });
    return writes;
  }

  it("on a terminal: finish draws the last numbers at 100% and ends the line", () => {
    const writes = capture();
    let now = 0;
    const progress = makeProgress("fetch", memoryLogger(), true, () => now);
    progress.update(0, 100 * MiB);
    now = 100; // throttled: not drawn
    progress.update(100 * MiB, 100 * MiB);
    progress.finish();
    expect(writes.at(-2)).toMatch(/^\rfetch: \[#{20}\] 100\.0 MiB of 100\.0 MiB \(100%\)/);
    expect(writes.at(-1)).toBe("\n");
  });

  it("on a terminal: the command's result on stdout comes after the finished line, not glued onto the bar", () => {
    // The drill: 'backup: [####...] ... ETA --20261201T195259Z' on the terminal, the id
    // printed while the bar was still drawn and finish() only after it.
    const order: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
      order.push(`err:${String(chunk)}`);
      return true;
    });
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
      order.push(`out:${String(chunk)}`);
      return true;
    });
    const progress = makeProgress("backup", memoryLogger(), true, () => 0);
    progress.update(10, 10);
    progress.log.info("backup 1 complete"); // redraws the bar after the log line
    progress.print("20261201T195259Z");
    progress.finish(); // the command's finally: nothing more is drawn
    expect(order.at(-1)).toBe("out:20261201T195259Z\n");
    expect(order.at(-2)).toBe("err:\n");
    expect(order.at(-3)).toMatch(/^err:\rbackup: \[#{20}\].*took/);
  });

  it("on a terminal: a log line clears the bar first and the bar is drawn again after it", () => {
    const writes = capture();
    const lines: string[] = [];
    const log = { ...memoryLogger(), info: (m: string) => lines.push(`${writes.length}:${m}`) };
    const progress = makeProgress("backup", log, true, () => 0);
    progress.update(1, 10);
    progress.log.info("backup 1 complete");
    const cleared = writes.indexOf("\r\x1b[K");
    expect(cleared).toBeGreaterThan(0);
    expect(lines).toEqual([`${cleared + 1}:backup 1 complete`]);
    expect(writes.at(-1)).toMatch(/^\rbackup: \[/);
  });

  it("in a log: no bar, no escape codes, one summary line every 10 seconds", () => {
    const writes = capture();
    const log = memoryLogger();
    let now = 0;
    const progress = makeProgress("backup", log, false, () => now);
    for (now = 0; now <= 25_000; now += 1000) progress.update(now * 1000, 50_000_000);
    progress.log.info("done");
    progress.finish();
    expect(writes).toEqual([]);
    expect(log.lines).toHaveLength(3);
    expect(log.lines[0]).toMatch(/^info: backup: 9\.5 MiB of 47\.7 MiB \(20%\), .*, ETA 40s$/);
    expect(log.lines.join("\n")).not.toContain("[#");
    expect(log.lines.join("\n")).not.toContain("\x1b");
    expect(log.lines[2]).toBe("info: done");
  });
});
