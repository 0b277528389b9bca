/** checkWalContinuity, backupRestorability, the sample and the exit code (pure). */
import { describe, expect, it } from "vitest";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { type Finding, verifyExit } from "../../src/verify/findings.js";
import { parseSample, pickSample, sampleSize } from "../../src/verify/sample.js";
import { backupRestorability, checkWalContinuity } from "../../src/verify/wal-continuity.js";
import { backupOverSegments, lsnOf, seg } from "../helpers/builders.js";

const backup = (id: string, tl: number, start: number, stop: number): BackupManifest =>
  backupOverSegments(id, tl, start, stop);

function facts(
  backups: BackupManifest[],
  wal: [number, number][],
  histories: [number, string][] = [],
  extra: Partial<RestoreFacts> = {},
): RestoreFacts {
  const map = new Map<string, WalObject>();
  for (const [tl, n] of wal)
    map.set(seg(tl, n), { name: seg(tl, n), size: 100, storedAt: undefined });
  return { backups, histories: new Map(histories), wal: map, ...extra };
}

const range = (tl: number, from: number, to: number): [number, number][] =>
  Array.from({ length: to - from + 1 }, (_, i) => [tl, from + i]);

describe("checkWalContinuity", () => {
  it("reports gaps once per run of consecutive segments, on every timeline path", () => {
    // Timeline 2 branched off at segment 6; timeline 1 ends there too.
    const history = `1\t${lsnOf(6, 0x500)}\tno recovery target specified\n`;
    const wal = [...range(1, 2, 6).filter(([, n]) => n !== 3 && n !== 4), ...range(2, 6, 12)];
    const f = facts(
      [backup("A", 1, 2, 2)],
      wal.filter(([tl, n]) => !(tl === 2 && n === 9)),
      [[2, history]],
    );
    const findings = checkWalContinuity(f);
    expect(findings.map((x) => [x.kind, x.object, x.timeline])).toEqual([
      ["wal-gap", `${seg(1, 3)}..${seg(1, 4)}`, 1],
      ["wal-gap", seg(2, 9), 2],
    ]);
    expect(findings[0]?.message).toContain("2 WAL segments");
    expect(verifyExit(findings)).toBe("unrestorable");
  });

  it("reports a gap before the point-in-time window's base as a warning (WAL prune deletes)", () => {
    // A, kept (pinned) with its own WAL only; B, the window's base; the WAL between them
    // pruned, as retention does.
    const backups = [
      backupOverSegments("A", 1, 2, 2, {
        startTime: "2026-11-01T00:00:00Z",
        stopTime: "2026-11-01T00:01:00Z",
      }),
      backupOverSegments("B", 1, 10, 10, {
        startTime: "2026-11-20T00:00:00Z",
        stopTime: "2026-11-20T00:01:00Z",
      }),
    ];
    const f = facts(backups, [[1, 2], ...range(1, 10, 12)]);
    const window = { pitrWindow: "7d", now: "2026-11-28T00:00:00Z", zone: "UTC" };
    const findings = checkWalContinuity(f, window);
    expect(findings.map((x) => [x.kind, x.severity, x.object])).toEqual([
      ["wal-gap", "warning", `${seg(1, 3)}..${seg(1, 9)}`],
    ]);
    expect(findings[0]?.message).toMatch(
      /before the point-in-time window retention keeps \(pitr-window 7d, from backup B; prune deletes such WAL\)/,
    );
    expect(verifyExit(findings)).toBe("ok");
    // Within the window (30 days back: from A) the same gap is WAL missing.
    const wider = checkWalContinuity(f, { ...window, pitrWindow: "30d" });
    expect(wider.map((x) => [x.severity, x.object])).toEqual([
      ["error", `${seg(1, 3)}..${seg(1, 9)}`],
    ]);
    // And without a policy, as before.
    expect(verifyExit(checkWalContinuity(f))).toBe("unrestorable");
  });

  it("finds nothing in a continuous archive, and no window without a backup", () => {
    expect(checkWalContinuity(facts([backup("A", 1, 2, 2)], range(1, 2, 9)))).toEqual([]);
    expect(
      checkWalContinuity(
        facts(
          [],
          [
            [1, 2],
            [1, 5],
          ],
        ),
      ),
    ).toEqual([]);
  });

  it("warns about a fork: the parent timeline goes on past the branch point", () => {
    const history = `1\t${lsnOf(6, 0x500)}\tno recovery target specified\n`;
    const f = facts([backup("A", 1, 2, 2)], [...range(1, 2, 8), ...range(2, 6, 7)], [[2, history]]);
    const findings = checkWalContinuity(f);
    expect(findings.map((x) => [x.kind, x.severity, x.object])).toEqual([
      ["wal-fork", "warning", `${seg(1, 7)}..${seg(1, 8)}`],
    ]);
    expect(findings[0]?.message).toContain("timeline 1 goes on past where timeline 2 branched off");
    expect(verifyExit(findings)).toBe("ok");
  });

  it("counts the segment that starts at the switch point as after it, not the one that holds it", () => {
    // Recovery ended at a segment boundary (the end of a pg_switch_wal): segment 6 on
    // timeline 1 holds only WAL written after the branch.
    const atBoundary = `1\t${lsnOf(6, 0)}\tno recovery target specified\n`;
    const wal = [...range(1, 2, 6), ...range(2, 6, 7)];
    const boundary = checkWalContinuity(facts([backup("A", 1, 2, 2)], wal, [[2, atBoundary]]));
    expect(boundary.map((x) => [x.kind, x.object])).toEqual([["wal-fork", seg(1, 6)]]);
    const inside = `1\t${lsnOf(6, 0x500)}\tno recovery target specified\n`;
    expect(checkWalContinuity(facts([backup("A", 1, 2, 2)], wal, [[2, inside]]))).toEqual([]);
  });

  it("reports a history file not followed, WAL of a timeline without one, and a name stored twice", () => {
    const f = facts(
      [backup("A", 1, 2, 2)],
      [...range(1, 2, 4), [3, 4], [2, 4]],
      [[2, "this is not a history file\n"]],
      { conflicts: new Map([[seg(1, 3), ["k1", "k2"]]]) },
    );
    const findings = checkWalContinuity(f);
    expect(findings.map((x) => [x.kind, x.object])).toEqual([
      ["history", "00000002.history"],
      ["wal-conflict", seg(1, 3)],
      ["timeline-without-history", "00000003.history"],
    ]);
    expect(findings[0]?.message).toMatch(/timeline 2 cannot be recovered to/);
    expect(verifyExit(findings)).toBe("integrity");
  });
});

describe("backupRestorability", () => {
  it("says which WAL between a backup's start and end is missing", () => {
    const b = backup("A", 1, 2, 4);
    expect(backupRestorability(facts([b], range(1, 2, 4)), b)).toEqual({
      restorable: true,
      gaps: [],
      reasons: [],
      segments: [seg(1, 2), seg(1, 3), seg(1, 4)],
    });
    const missing = backupRestorability(
      facts(
        [b],
        [
          [1, 2],
          [1, 4],
          [1, 5],
        ],
      ),
      b,
    );
    expect(missing).toMatchObject({ restorable: false, gaps: [seg(1, 3)] });
    expect(missing.reasons.join()).toMatch(/missing between backup A/);
    // WAL after its end does not matter to it.
    expect(backupRestorability(facts([b], [...range(1, 2, 4), [1, 9]]), b).restorable).toBe(true);
  });
});

describe("sample", () => {
  it("parses a count or a percentage and refuses anything else", () => {
    expect(parseSample("20")).toEqual({ kind: "count", count: 20 });
    expect(parseSample("5%")).toEqual({ kind: "percent", percent: 5 });
    expect(parseSample("0.5%")).toEqual({ kind: "percent", percent: 0.5 });
    for (const bad of ["0", "0%", "101%", "-3", "x", "5 %", ""]) {
      expect(() => parseSample(bad)).toThrow(/is not a count/);
    }
  });

  it("picks the sample's size at random and keeps the chosen in order", () => {
    expect(sampleSize(undefined, 7)).toBe(7);
    expect(sampleSize({ kind: "count", count: 20 }, 7)).toBe(7);
    expect(sampleSize({ kind: "percent", percent: 10 }, 7)).toBe(1);
    expect(sampleSize({ kind: "percent", percent: 10 }, 0)).toBe(0);
    const items = ["a", "b", "c", "d", "e"];
    expect(pickSample(items, { kind: "count", count: 2 }, () => 0)).toEqual(["a", "b"]);
    expect(pickSample(items, { kind: "count", count: 1 }, () => 0.999)).toEqual(["e"]);
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const picked = pickSample(items, { kind: "count", count: 3 }, Math.random);
      expect(new Set(picked).size).toBe(3);
      for (const p of picked) seen.add(p);
    }
    expect(seen.size).toBe(5);
  });
});

describe("verifyExit", () => {
  const finding = (kind: Finding["kind"], severity: Finding["severity"] = "error"): Finding => ({
    kind,
    severity,
    object: "x",
    message: "x",
  });
  it("is integrity for damaged objects, unrestorable for gaps alone, ok for warnings", () => {
    expect(verifyExit([])).toBe("ok");
    expect(verifyExit([finding("wal-fork", "warning")])).toBe("ok");
    expect(verifyExit([finding("wal-gap"), finding("unrestorable")])).toBe("unrestorable");
    expect(verifyExit([finding("wal-gap"), finding("checksum")])).toBe("integrity");
    expect(verifyExit([finding("missing")])).toBe("integrity");
  });
});
