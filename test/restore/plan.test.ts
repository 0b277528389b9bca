/** planRestore (pure): backup choice, timeline path, WAL range and gaps. */
import { describe, expect, it } from "vitest";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { refusalError } from "../../src/restore/apply.js";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { planRestore, type RestorePlan } from "../../src/restore/plan.js";
import type { RestoreRequest, RestoreTarget } from "../../src/restore/target.js";
import { timelinePath } from "../../src/wal/history.js";
import { backupOverSegments, seg } from "../helpers/builders.js";

const backup = (id: string, tl: number, start: number, stop: number, stopTime: string) =>
  backupOverSegments(id, tl, start, stop, { startTime: stopTime, stopTime, storedBytes: 1000 });

function facts(
  backups: BackupManifest[],
  wal: [number, number, string?][],
  histories: [number, string][] = [],
): RestoreFacts {
  const map = new Map<string, WalObject>();
  for (const [tl, n, at] of wal) map.set(seg(tl, n), { name: seg(tl, n), size: 100, storedAt: at });
  return { backups, histories: new Map(histories), wal: map };
}

/** A refused plan, thrown so the assertions read as before. */
class RestorePlanError extends Error {
  constructor(
    message: string,
    readonly gaps: string[],
  ) {
    super(message);
  }
}

function planOrThrow(f: RestoreFacts, r: RestoreRequest): RestorePlan {
  const outcome = planRestore(f, r);
  if (!outcome.ok) {
    throw new RestorePlanError(outcome.refusal.reasons.join("; "), outcome.refusal.gaps);
  }
  return outcome.plan;
}

const timeTarget = (text: string): RestoreTarget => ({ kind: "time", at: Date.parse(text), text });

const req = (over: Partial<RestoreRequest>): RestoreRequest => ({
  target: { kind: "latest" },
  timeline: "latest",
  exclusive: false,
  action: "pause",
  backupId: undefined,
  ...over,
});

const A = backup("A", 1, 2, 2, "2026-11-20T00:00:00Z");
const B = backup("B", 1, 5, 5, "2026-11-21T00:00:00Z");
const wal1 = [2, 3, 4, 5, 6, 7].map((n): [number, number, string] => [
  1,
  n,
  `2026-11-21T0${n}:00:00Z`,
]);

describe("planRestore", () => {
  it("chooses the newest backup that finished before a time target, and the WAL up to it", () => {
    // Segment 2 was archived before the target, segment 3 after it: 3 holds the target.
    const timed: [number, number, string][] = [
      [1, 2, "2026-11-20T06:00:00Z"],
      [1, 3, "2026-11-20T13:00:00Z"],
      [1, 4, "2026-11-20T20:00:00Z"],
      [1, 5, "2026-11-21T01:00:00Z"],
    ];
    const plan = planOrThrow(
      facts([A, B], timed),
      req({ target: timeTarget("2026-11-20 12:00:00+00") }),
    );
    expect(plan.backup.id).toBe("A");
    expect(plan.wal.segments).toEqual([seg(1, 2), seg(1, 3)]);
    expect(plan.settings).toEqual([
      ["recovery_target_time", "2026-11-20 12:00:00+00"],
      ["recovery_target_inclusive", "true"],
      ["recovery_target_timeline", "latest"],
      ["recovery_target_action", "pause"],
    ]);
  });

  it("recovers to the end of the archive for latest, and refuses a gap before it", () => {
    const plan = planOrThrow(facts([A, B], wal1), req({}));
    expect(plan.backup.id).toBe("B");
    expect(plan.wal.last).toBe(seg(1, 7));
    const holed = facts(
      [A, B],
      wal1.filter(([, n]) => n !== 6),
    );
    const error = (() => {
      try {
        planOrThrow(holed, req({}));
      } catch (e) {
        return e;
      }
    })() as RestorePlanError;
    expect(error).toBeInstanceOf(RestorePlanError);
    expect(error.gaps).toEqual([seg(1, 6)]);
  });

  it("follows the timeline path: the switch segment comes from the new timeline", () => {
    // Timeline 2 branched at 0/5800000, inside segment 5.
    const history = "1\t0/5800000\tno recovery target specified\n";
    const f = facts([A], [...wal1, [2, 5], [2, 6], [2, 8]], [[2, history]]);
    expect(timelinePath(2, history).map((s) => s.timeline)).toEqual([1, 2]);
    const error = (() => {
      try {
        planOrThrow(f, req({}));
      } catch (e) {
        return e as RestorePlanError;
      }
    })();
    // On timeline 2: segments 2-4 from timeline 1, 5 onward from timeline 2; 7 is missing there.
    expect(error?.gaps).toEqual([seg(2, 7)]);
    const plan = planOrThrow(f, req({ target: { kind: "lsn", lsn: "0/6000100" } }));
    expect(plan.wal.segments).toEqual([seg(1, 2), seg(1, 3), seg(1, 4), seg(2, 5), seg(2, 6)]);
    expect(plan.path).toEqual([
      { timeline: 1, begin: "0/0", end: "0/5800000" },
      { timeline: 2, begin: "0/5800000", end: null },
    ]);
  });

  it("leaves out backups past the branch point and explains xid and name targets", () => {
    const history = "1\t0/3800000\tno recovery target specified\n";
    const f = facts([A, B], [...wal1, [2, 3], [2, 4]], [[2, history]]);
    const plan = planOrThrow(f, req({ target: { kind: "xid", xid: "1234" }, timeline: 2 }));
    expect(plan.backup.id).toBe("A");
    expect(plan.notes[0]).toMatch(/cannot know where transaction 1234 is/);
    expect(() => planOrThrow(f, req({ timeline: 2, backupId: "B" }))).toThrow(/not on the path/);
  });

  it("says a backup id the repository does not hold is not found (exit 13), not unreachable", () => {
    const outcome = planRestore(facts([A, B], wal1), req({ backupId: "20200101T000000Z" }));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    const error = refusalError(outcome.refusal);
    expect(error.exit).toBe("notFoundInRepo");
    expect(error.message).toBe("there is no backup 20200101T000000Z");
  });

  it("refuses a target no backup can reach, and a timeline without history", () => {
    expect(() =>
      planOrThrow(facts([A, B], wal1), req({ target: timeTarget("2026-01-01T00:00:00Z") })),
    ).toThrow(/no backup finished at or before time/);
    expect(() => planOrThrow(facts([A], wal1), req({ timeline: 3 }))).toThrow(
      /timeline 3 has no history file/,
    );
    expect(() => planOrThrow(facts([], wal1), req({}))).toThrow(/no backups/);
    expect(() =>
      planOrThrow(facts([A], wal1), req({ target: { kind: "lsn", lsn: "FFFFFFFF/0" } })),
    ).toThrow(/past the end of the archive/);
  });
});
