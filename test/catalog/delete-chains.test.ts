/** backup delete's plan with chains of incremental backups (catalog/plan-delete.ts). */
import { describe, expect, it } from "vitest";
import { planBackupDelete } from "../../src/catalog/plan-delete.js";
import type { BackupEntry } from "../../src/prune/plan-prune.js";

const idOf = (day: number) => `202611${String(day).padStart(2, "0")}T010000Z`;

/** Full on the 1st with incrementals on the 2nd and 3rd; full on the 8th, incremental on the 9th. */
function backups(pinned: number[] = []): BackupEntry[] {
  const spec: [number, number[]][] = [
    [1, []],
    [2, [1]],
    [3, [1, 2]],
    [8, []],
    [9, [8]],
  ];
  return spec.map(([day, chain]) => {
    const time = `2026-11-${String(day).padStart(2, "0")}T01:00:00Z`;
    return {
      id: idOf(day),
      time,
      stopTime: time,
      pinned: pinned.includes(day),
      keys: [`backups/${idOf(day)}/manifest.json`],
      bytes: day,
      timeline: 1,
      startWal: "000000010000000000000001",
      stopWal: "000000010000000000000001",
      type: chain.length === 0 ? "full" : "incr",
      chain: chain.map(idOf),
    };
  });
}

const options = {
  pitrWindow: "1h",
  now: "2026-11-10T00:00:00Z",
  zone: "UTC",
  allowShorterWindow: false,
};
const byId = (list: BackupEntry[], day: number) =>
  list.find((b) => b.id === idOf(day)) as BackupEntry;

describe("backup delete with chains", () => {
  it("refuses a full that incremental backups need, naming them", () => {
    const list = backups();
    const plan = planBackupDelete(list, byId(list, 1), options);
    expect(plan.kind).toBe("refused");
    expect(plan.kind === "refused" && plan.reason).toBe(
      `backup ${idOf(1)} is needed by 2 incremental backups (${idOf(3)}, ${idOf(2)}): without it they cannot be restored`,
    );
    expect(plan.kind === "refused" && plan.hint).toMatch(/--with-dependents/);
  });

  it("refuses an incremental that a later incremental needs; deletes the last of a chain alone", () => {
    const list = backups();
    expect(planBackupDelete(list, byId(list, 2), options).kind).toBe("refused");
    const last = planBackupDelete(list, byId(list, 3), options);
    expect(last.kind).toBe("delete");
    expect(last.kind === "delete" && last.dependents).toBeUndefined();
  });

  it("with --with-dependents deletes the full and its incrementals, newest first", () => {
    const list = backups();
    const plan = planBackupDelete(list, byId(list, 1), { ...options, withDependents: true });
    expect(plan.kind).toBe("delete");
    expect(plan.kind === "delete" && plan.dependents?.map((d) => d.id)).toEqual([idOf(3), idOf(2)]);
  });

  it("refuses when a dependent is pinned, even with --with-dependents", () => {
    const list = backups([2]);
    const plan = planBackupDelete(list, byId(list, 1), { ...options, withDependents: true });
    expect(plan.kind === "refused" && plan.reason).toBe(
      `backup ${idOf(1)} is needed by the pinned backup ${idOf(2)}`,
    );
  });

  it("refuses when a dependent is the point-in-time window's base", () => {
    const list = backups();
    // Window 2d from the 10th: starts the 8th 00:00; base: the 3rd (an incremental of the 1st).
    const plan = planBackupDelete(list, byId(list, 1), {
      ...options,
      pitrWindow: "2d",
      withDependents: true,
    });
    expect(plan.kind === "refused" && plan.reason).toMatch(
      new RegExp(`backup ${idOf(3)} is the base of the point-in-time window 2d`),
    );
  });

  it("refuses deleting a chain that is all the cluster has", () => {
    const list = backups().slice(0, 3);
    const plan = planBackupDelete(list, byId(list, 1), { ...options, withDependents: true });
    expect(plan.kind === "refused" && plan.reason).toMatch(
      /and its dependents are the cluster's only backups/,
    );
  });
});
