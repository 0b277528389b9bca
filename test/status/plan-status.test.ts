/** planStatus (pure): RPO, windows and gaps per timeline, newest items, thresholds. */
import { describe, expect, it } from "vitest";
import { formatAge, planStatus } from "../../src/status/plan-status.js";
import {
  at,
  backup,
  clusterFacts,
  drill,
  dump,
  gappedWal,
  lsnOf,
  seg,
} from "../helpers/status-facts.js";

const NOW = Date.parse(at("13:00"));

describe("planStatus", () => {
  it("gives the RPO, a window cut by a gap, and what each backup reaches", () => {
    const b1 = backup("20261201T100000Z", 1, 2, 3, at("10:05"));
    const b2 = backup("20261201T113000Z", 1, 8, 8, at("11:35"));
    const status = planStatus(clusterFacts([b1, b2], gappedWal()), NOW);
    expect(status.lastArchived).toEqual({
      name: seg(1, 10),
      timeline: 1,
      time: at("12:30"),
      clock: "database",
      ageSeconds: 1800,
    });
    expect(status.timelines).toHaveLength(1);
    const [tl1] = status.timelines;
    expect(tl1).toMatchObject({
      timeline: 1,
      start: at("10:05"),
      end: at("12:30"),
      endClock: "database",
      gaps: [
        { first: seg(1, 5), last: seg(1, 6), count: 2, after: at("10:30"), before: at("11:15") },
      ],
      unrestorableBackups: [],
      notes: [],
    });
    expect(tl1?.ranges).toEqual([
      { backup: b1.id, from: at("10:05"), to: at("10:30"), clock: "storage" },
      { backup: b2.id, from: at("11:35"), to: at("12:30"), clock: "database" },
    ]);
    expect(status.lastBackup).toMatchObject({ id: b2.id, restorable: true, durationSeconds: 120 });
    expect(status.repositoryBytes.backups).toBe(2000);
    expect(status.breaches).toEqual([]);
  });

  it("says when no backup reaches the end of the archive, and names unrestorable backups", () => {
    // b1's own WAL (segment 5) is missing; b0 reaches segment 4 only.
    const b0 = backup("20261201T094500Z", 1, 2, 2, at("09:50"));
    const b1 = backup("20261201T103000Z", 1, 5, 5, at("10:35"));
    const status = planStatus(clusterFacts([b0, b1], gappedWal()), NOW);
    const [tl1] = status.timelines;
    expect(tl1?.unrestorableBackups).toEqual([b1.id]);
    expect(tl1?.start).toBe(at("09:50"));
    expect(tl1?.end).toBe(at("10:30"));
    expect(tl1?.endClock).toBe("storage");
    expect(tl1?.notes.join("\n")).toMatch(/no backup reaches the end of the archive/);
    expect(status.lastBackup).toMatchObject({ id: b1.id, restorable: false });
  });

  it("an increment whose chain lacks a backup is not restorable and reaches nothing (as restore plan passes it over)", () => {
    const full = backup("20261201T113000Z", 1, 8, 8, at("11:35"));
    const incr = (id: string, stop: string, chain: string[]) => ({
      ...backup(id, 1, 9, 9, stop),
      type: "incr" as const,
      parent: chain.at(-1) ?? null,
      chain,
    });
    const i1 = incr("20261201T114000Z", at("11:45"), [full.id]);
    const i2 = incr("20261201T115000Z", at("11:55"), [full.id, i1.id]);
    const whole = planStatus(clusterFacts([full, i1, i2], gappedWal()), NOW);
    expect(whole.lastBackup).toMatchObject({ id: i2.id, restorable: true, chainLacks: null });
    // i1's manifest removed: i2 cannot be restored; the full still can.
    const status = planStatus(clusterFacts([full, i2], gappedWal()), NOW);
    expect(status.lastBackup).toMatchObject({ id: i2.id, restorable: false, chainLacks: i1.id });
    const [tl1] = status.timelines;
    expect(tl1?.ranges.map((r) => r.backup)).toEqual([full.id]);
    expect(tl1?.start).toBe(at("11:35"));
    expect(tl1?.notes).toEqual([`backup ${i2.id} lacks ${i1.id} of its chain: not restorable`]);
  });

  it("gives each timeline its own window along its path", () => {
    const b1 = backup("20261201T100000Z", 1, 2, 2, at("10:05"));
    const wal: [number, number, string, string?][] = [
      [1, 2, at("10:06")],
      [1, 3, at("10:20")],
      [1, 4, at("10:40"), at("10:40")],
      [2, 4, at("11:00")],
      [2, 5, at("11:30"), at("11:31")],
    ];
    // Timeline 2 branched off in segment 4.
    const status = planStatus(
      clusterFacts([b1], wal, {}, [[2, `1\t${lsnOf(4, 0x500)}\tno recovery target specified\n`]]),
      NOW,
    );
    expect(status.timelines.map((t) => [t.timeline, t.start, t.end, t.gaps.length])).toEqual([
      [1, at("10:05"), at("10:40"), 0],
      [2, at("10:05"), at("11:31"), 0],
    ]);
    expect(status.lastArchived?.name).toBe(seg(2, 5));
  });

  it("names a timeline whose history file is missing or not followed", () => {
    const b1 = backup("20261201T100000Z", 1, 2, 2, at("10:05"));
    const wal: [number, number, string, string?][] = [
      [1, 2, at("10:06")],
      [2, 3, at("11:00")],
      [3, 4, at("12:00")],
    ];
    const status = planStatus(clusterFacts([b1], wal, {}, [[3, "garbage\n"]]), NOW);
    expect(status.timelines.map((t) => [t.timeline, t.start, t.notes])).toEqual([
      [1, at("10:05"), []],
      [
        2,
        undefined,
        ["nothing can be restored to it: its history file 00000002.history is not in the archive"],
      ],
      [
        3,
        undefined,
        [
          "nothing can be restored to it: its history file 00000003.history is not followed: line 1 does not start with a timeline number",
        ],
      ],
    ]);
  });

  it("reports an empty repository as nothing, and breaches every threshold", () => {
    const status = planStatus(clusterFacts([], []), NOW, {
      maxRpoMs: 60_000,
      maxBackupAgeMs: 3_600_000,
      maxDrillAgeMs: 86_400_000,
    });
    expect(status.lastArchived).toBeNull();
    expect(status.lastBackup).toBeNull();
    expect(status.timelines[0]?.notes).toEqual([
      "no backup on this timeline's path: nothing can be restored to it",
    ]);
    expect(status.breaches).toEqual([
      "cluster 'main': no archived WAL with a known time (--max-rpo 1m00s)",
      "cluster 'main': no backup (--max-backup-age 1h00m)",
      "cluster 'main': no drill has passed (--max-drill-age 1d00h)",
    ]);
  });

  it("breaches a threshold only when the age is over it, one line each", () => {
    const b2 = backup("20261201T113000Z", 1, 8, 8, at("11:35"));
    const facts = clusterFacts([b2], gappedWal(), {
      drills: [drill("d1", at("09:00"), true), drill("d2", at("12:00"), false)],
      dumps: [dump("20261201T080000Z", at("08:00")), dump("20261201T120000Z", at("12:00"))],
    });
    const within = planStatus(facts, NOW, {
      maxRpoMs: 31 * 60_000,
      maxBackupAgeMs: 2 * 3_600_000,
      maxDrillAgeMs: 5 * 3_600_000,
    });
    expect(within.breaches).toEqual([]);
    const over = planStatus(facts, NOW, {
      maxRpoMs: 10 * 60_000,
      maxBackupAgeMs: 3_600_000,
      maxDrillAgeMs: 3_600_000,
    });
    expect(over.breaches).toEqual([
      `cluster 'main': RPO 30m00s is over --max-rpo 10m00s: the newest archived WAL ${seg(1, 10)} was pushed at ${at("12:30")}`,
      "cluster 'main': the newest backup 20261201T113000Z is 1h25m old, over --max-backup-age 1h00m",
      "cluster 'main': the newest passing drill d1 is 4h00m old, over --max-drill-age 1h00m (the last drill, d2, failed)",
    ]);
    expect(over.lastDrill).toMatchObject({ id: "d2", passed: false, rtoSeconds: 42.5 });
    expect(over.lastPassedDrill?.id).toBe("d1");
    expect(over.lastDump).toMatchObject({
      id: "20261201T120000Z",
      durationSeconds: 30,
      databases: 1,
      rawBytes: 600,
      storedBytes: 200,
    });
  });

  it("lets a backup with no WAL after its own reach its end only", () => {
    // The stop segment was pushed a moment before the backup recorded its stop time.
    const b = backup("20261201T124500Z", 1, 4, 4, at("12:50"));
    const status = planStatus(clusterFacts([b], [[1, 4, at("12:49"), at("12:49")]]), NOW);
    expect(status.timelines[0]).toMatchObject({ start: at("12:50"), end: at("12:50") });
  });

  it("falls back to the store's time for a segment without a push time", () => {
    const status = planStatus(clusterFacts([], [[1, 3, at("12:50")]]), NOW);
    expect(status.lastArchived).toMatchObject({
      clock: "storage",
      time: at("12:50"),
      ageSeconds: 600,
    });
  });
});

describe("formatAge", () => {
  it("reads at a glance", () => {
    expect([45, 750, 18_120, 273_600].map(formatAge)).toEqual(["45s", "12m30s", "5h02m", "3d04h"]);
  });
});
