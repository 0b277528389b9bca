/** The WAL horizon (retention/wal-horizon.ts): what WAL the kept backups still need. */
import { describe, expect, it } from "vitest";
import { type BackupSpan, isWalKept, planWalHorizon } from "../../retention/index.js";

const MiB16 = 16 * 1024 * 1024;
const seg = (tl: number, n: number) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;
const backup = (
  id: string,
  tl: number,
  start: number,
  stop: number,
  stopTime: string,
): BackupSpan => ({
  id,
  timeline: tl,
  startWal: seg(tl, start),
  stopWal: seg(tl, stop),
  stopTime,
});

const A = backup("A", 1, 0x10, 0x11, "2026-11-11T00:00:00Z");
const B = backup("B", 1, 0x50, 0x51, "2026-11-16T00:00:00Z");
const C = backup("C", 1, 0x90, 0x91, "2026-11-20T00:00:00Z");
const now = "2026-11-21T00:00:00Z";

/** The horizon `now` of these kept backups (16 MiB segments). */
const horizonOf = (kept: BackupSpan[], pitrWindow: string, timelines = [1]) =>
  planWalHorizon({ kept, pitrWindow, now, walSegmentSize: MiB16, timelines });

describe("planWalHorizon", () => {
  it("keeps WAL continuously from the backup that covers the window's start", () => {
    const horizon = horizonOf([C, A, B], "7d");
    expect(horizon.anchor).toBe("A");
    expect(horizon.ranges).toEqual([
      {
        timeline: 1,
        from: seg(1, 0x10),
        to: null,
        reason: "point-in-time window 7d from backup A",
      },
    ]);
    expect(isWalKept(seg(1, 0x0f), horizon, MiB16)).toBe(false);
    for (const n of [0x10, 0x30, 0x90, 0x200])
      expect(isWalKept(seg(1, n), horizon, MiB16)).toBe(true);
  });

  it("keeps only their own WAL for backups older than the anchor", () => {
    const horizon = horizonOf([A, B, C], "2d");
    expect(horizon.anchor).toBe("B");
    const kept = (n: number) => isWalKept(seg(1, n), horizon, MiB16);
    expect([0x0f, 0x10, 0x11, 0x12, 0x4f, 0x50, 0x91, 0x300].map(kept)).toEqual([
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(isWalKept(`${seg(1, 0x11)}.00000028.backup`, horizon, MiB16)).toBe(true);
    expect(isWalKept(`${seg(1, 0x12)}.partial`, horizon, MiB16)).toBe(false);
  });

  it("never anchors at an incremental whose chain is not kept: the WAL from the whole one before stays", () => {
    // B is an incremental of a full "F" that is gone: A is the window's base, as retention says.
    const horizon = horizonOf([A, { ...B, chain: ["F"] }, C], "2d");
    expect(horizon.anchor).toBe("A");
    expect(isWalKept(seg(1, 0x30), horizon, MiB16)).toBe(true);
    expect(horizonOf([A, { ...B, chain: ["A"] }, C], "2d").anchor).toBe("B");
  });

  it("anchors at the oldest kept backup when none is older than the window", () => {
    const horizon = horizonOf([B, C], "30d");
    expect(horizon.anchor).toBe("B");
  });

  it("follows later timelines and keeps their history files", () => {
    const D = backup("D", 2, 0x95, 0x96, "2026-11-20T12:00:00Z");
    const horizon = horizonOf([B, D], "2d", [1, 2, 3]);
    expect(horizon.anchor).toBe("B");
    expect(horizon.ranges.map((r) => [r.timeline, r.from, r.to])).toEqual([
      [1, seg(1, 0x50), null],
      [2, seg(2, 0x50), null],
      [3, seg(3, 0x50), null],
    ]);
    expect(isWalKept(seg(2, 0x96), horizon, MiB16)).toBe(true);
    expect(isWalKept("00000002.history", horizon, MiB16)).toBe(true);
    expect(isWalKept("00000003.history", horizon, MiB16)).toBe(true);
  });

  it("drops history files below every kept timeline", () => {
    const E = backup("E", 3, 0xa0, 0xa1, "2026-11-10T00:00:00Z");
    const horizon = horizonOf([E], "1d", [1, 2, 3]);
    expect(isWalKept("00000002.history", horizon, MiB16)).toBe(false);
    expect(isWalKept("00000003.history", horizon, MiB16)).toBe(true);
    expect(isWalKept(seg(2, 0xb0), horizon, MiB16)).toBe(false);
  });

  it("prunes nothing without kept backups", () => {
    const horizon = horizonOf([], "7d");
    expect(horizon.keepAll).toBe(true);
    expect(isWalKept(seg(1, 1), horizon, MiB16)).toBe(true);
  });
});
