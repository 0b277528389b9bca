/**
 * Targets past the archive (issue 12, point 1): a time at or after the push time of the
 * newest segment on the path, in the future, or past the end of an older timeline is
 * refused with the archive's end; objects without a push time fall back to the store's
 * clock with its margin.
 */
import { describe, expect, it } from "vitest";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { pathEndSegments } from "../../src/restore/archive-end.js";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { type PlanOutcome, planRestore } from "../../src/restore/plan.js";
import type { RestoreRequest } from "../../src/restore/target.js";
import { timelinePath } from "../../src/wal/history.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (tl: number, n: number) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;

const A: BackupManifest = makeBackupManifest({
  id: "A",
  startWal: seg(1, 2),
  stopWal: seg(1, 2),
  startLsn: "0/2000028",
  stopLsn: "0/2000100",
  startTime: "2026-11-21T01:00:00Z",
  stopTime: "2026-11-21T01:00:00Z",
});

/** Segments [timeline, number, stored at, pushed at]. */
function facts(
  wal: [number, number, string, string?][],
  histories: [number, string][] = [],
  listedAt = "2026-11-21T12:00:00Z",
): RestoreFacts {
  const map = new Map<string, WalObject>();
  for (const [tl, n, storedAt, pushedAt] of wal)
    map.set(seg(tl, n), { name: seg(tl, n), size: 100, storedAt, pushedAt });
  return { backups: [A], histories: new Map(histories), wal: map, listedAt };
}

const at = (text: string, timeline: RestoreRequest["timeline"] = "latest"): RestoreRequest => ({
  target: { kind: "time", at: Date.parse(text), text },
  timeline,
  exclusive: false,
  action: "pause",
  backupId: undefined,
});

const reasons = (outcome: PlanOutcome) => (outcome.ok ? [] : outcome.refusal.reasons);

// Pushed one hour apart; the store's clock runs 10 minutes behind the database's.
const pushed: [number, number, string, string][] = [2, 3, 4, 5].map((n) => [
  1,
  n,
  `2026-11-21T0${n}:50:00Z`,
  `2026-11-21T0${n}:00:00Z`,
]);

describe("targets past the archive", () => {
  it("refuses a time at or after the push time of the newest segment, naming it", () => {
    const outcome = planRestore(facts(pushed), at("2026-11-21T05:00:00Z"));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal.reasons[0]).toMatch(
      /time 2026-11-21T05:00:00Z cannot be reached: the newest restorable time on timeline 1 is before 2026-11-21T05:00:00Z: the archive on this path ends with segment 000000010000000000000005/,
    );
    expect(outcome.refusal.archiveEnd).toEqual({
      timeline: 1,
      segment: seg(1, 5),
      time: "2026-11-21T05:00:00Z",
      clock: "database",
    });
    // Inside the storage clock's old 5-minute margin, and still refused: no skew to allow for.
    expect(reasons(planRestore(facts(pushed), at("2026-11-21T05:00:01Z")))[0]).toMatch(
      /newest restorable time on timeline 1 is before 2026-11-21T05:00:00Z/,
    );
  });

  it("approves a time before it, and says where the archive ends", () => {
    const outcome = planRestore(facts(pushed), at("2026-11-21T04:59:59Z"));
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.plan.wal.end).toEqual({
      timeline: 1,
      segment: seg(1, 5),
      time: "2026-11-21T05:00:00Z",
      clock: "database",
    });
  });

  it("refuses a time in the future", () => {
    const outcome = planRestore(
      facts(pushed, [], "2026-11-21T04:00:00Z"),
      at("2026-11-21T04:30:00Z"),
    );
    expect(reasons(outcome)[0]).toMatch(
      /cannot be reached: it is in the future \(the archive was read at 2026-11-21T04:00:00Z\)/,
    );
  });

  it("refuses a time past the end of a timeline that ended before it", () => {
    // Timeline 2 branched inside segment 4; timeline 1 was archived up to 4, pushed at 04:00.
    const history = "1\t0/4800000\tno recovery target specified\n";
    const f = facts(
      [...pushed.slice(0, 3), [2, 4, "2026-11-21T06:50:00Z"], [2, 5, "x", "2026-11-21T08:00:00Z"]],
      [[2, history]],
    );
    expect(reasons(planRestore(f, at("2026-11-21T06:00:00Z", 1)))[0]).toMatch(
      /the newest restorable time on timeline 1 is before 2026-11-21T04:00:00Z/,
    );
    expect(planRestore(f, at("2026-11-21T06:00:00Z", 2)).ok).toBe(true);
    expect(planRestore(f, at("2026-11-21T03:30:00Z", 1)).ok).toBe(true);
  });

  it("falls back to the store's clock, with its margin, for segments without a push time", () => {
    const old: [number, number, string][] = [2, 3, 4, 5].map((n) => [
      1,
      n,
      `2026-11-21T0${n}:00:00Z`,
    ]);
    expect(planRestore(facts(old), at("2026-11-21T05:04:59Z")).ok).toBe(true);
    const outcome = planRestore(facts(old), at("2026-11-21T05:05:01Z"));
    expect(reasons(outcome)[0]).toMatch(
      /before about 2026-11-21T05:00:00Z: the archive on this path ends with segment 000000010000000000000005, stored then \(the store's clock/,
    );
    expect(outcome.ok ? undefined : outcome.refusal.archiveEnd?.clock).toBe("storage");
  });

  it("reads push times of the newest segment on each timeline's path only", () => {
    const history = "1\t0/4800000\tno recovery target specified\n";
    const names = [seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 6), seg(2, 4), seg(2, 5), seg(1, 5)];
    const ends = pathEndSegments(
      names,
      [timelinePath(1, undefined), timelinePath(2, history)],
      16 << 20,
    );
    expect([...ends].sort()).toEqual([seg(1, 6), seg(2, 5)]);
  });
});
