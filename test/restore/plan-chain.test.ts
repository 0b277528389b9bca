/** planRestore with incremental backups (issue 14, point 2): the chain it reads, or why not. */
import { describe, expect, it } from "vitest";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { refusalError } from "../../src/restore/apply.js";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { planRestore } from "../../src/restore/plan.js";
import type { RestoreRequest } from "../../src/restore/target.js";
import { backupOverSegments, seg } from "../helpers/builders.js";

const backup = (id: string, n: number, chain: string[]) =>
  ({
    ...backupOverSegments(id, 1, n, n, {
      stopTime: `2026-11-2${n}T00:00:00Z`,
      storedBytes: 1000 * n,
    }),
    ...(chain.length > 0
      ? { format: 2, type: "incr", parent: chain.at(-1), chain }
      : { type: "full", parent: null, chain: [] }),
  }) as unknown as BackupManifest;

const F = backup("F", 2, []);
const I1 = backup("I1", 3, ["F"]);
const I2 = backup("I2", 4, ["F", "I1"]);

function facts(backups: BackupManifest[]): RestoreFacts {
  const wal = new Map<string, WalObject>();
  for (const n of [2, 3, 4, 5])
    wal.set(seg(1, n), { name: seg(1, n), size: 100, storedAt: undefined });
  return { backups, histories: new Map(), wal };
}

const req = (over: Partial<RestoreRequest> = {}): RestoreRequest => ({
  target: { kind: "latest" },
  timeline: "latest",
  exclusive: false,
  action: "pause",
  backupId: undefined,
  ...over,
});

describe("planRestore with chains", () => {
  it("names the chain an incremental backup is read with, and counts its bytes", () => {
    const outcome = planRestore(facts([F, I1, I2]), req());
    if (!outcome.ok) throw new Error(outcome.refusal.reasons.join("; "));
    expect(outcome.plan.backup.id).toBe("I2");
    expect(outcome.plan.chain.map((b) => b.id)).toEqual(["F", "I1"]);
    expect(outcome.plan.downloadBytes).toBe(2000 + 3000 + 4000 + outcome.plan.wal.bytes);
  });

  it("refuses (exit 11) a named backup whose chain lacks a member", () => {
    const outcome = planRestore(facts([F, I2]), req({ backupId: "I2" }));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal.reasons[0]).toMatch(
      /needs backup I1 of its chain \(F, I1\), which is missing or damaged/,
    );
    expect(refusalError(outcome.refusal).exit).toBe("unrestorable");
  });

  it("passes over a broken chain when it chooses, and says so", () => {
    const outcome = planRestore(facts([F, I2]), req());
    if (!outcome.ok) throw new Error(outcome.refusal.reasons.join("; "));
    expect(outcome.plan.backup.id).toBe("F");
    expect(outcome.plan.chain).toEqual([]);
    expect(outcome.plan.notes.join("\n")).toMatch(/backup I2 lacks I1 of its chain: passed over/);
  });

  it("refuses when every backup that could reach the target has a broken chain", () => {
    const outcome = planRestore(facts([I1, I2]), req());
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal.reasons.join("; ")).toMatch(
      /backup I1 lacks F of its chain; backup I2 lacks F of its chain: not restorable/,
    );
  });
});
