/** Prune over chains of incremental backups (manifests written into a memory repository). */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { applyPrune } from "../../src/prune/apply-prune.js";
import { gatherPruneFacts, planPrune } from "../../src/prune/plan-prune.js";
import { type BackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import {
  backupDataKey,
  backupManifestKey,
  backupPinKey,
  identityKey,
  walKey,
} from "../../src/repository/keys.js";
import { writePin } from "../../src/repository/pin.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;

/** Full F1 on the 1st, incrementals on the 2nd-4th; full F8 on the 8th, incremental on the 9th. */
const BACKUPS = [
  { day: 1, chain: [] },
  { day: 2, chain: [1] },
  { day: 3, chain: [1, 2] },
  { day: 4, chain: [1, 2, 3] },
  { day: 8, chain: [] },
  { day: 9, chain: [8] },
] as const;
const idOf = (day: number) => `202611${String(day).padStart(2, "0")}T010000Z`;
const now = "2026-11-10T12:00:00Z";

function manifest(day: number, chain: readonly number[]): BackupManifest {
  const time = `2026-11-${String(day).padStart(2, "0")}T01:00:00Z`;
  const base = makeBackupManifest({
    id: idOf(day),
    startWal: seg(day * 2),
    stopWal: seg(day * 2),
    startTime: time,
    stopTime: time,
  });
  const ids = chain.map(idOf);
  return (ids.length === 0
    ? { ...base, type: "full", parent: null, chain: [] }
    : {
        ...base,
        format: 2,
        type: "incr",
        parent: ids.at(-1),
        chain: ids,
      }) as unknown as BackupManifest;
}

async function seeded(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.put(
    identityKey("main"),
    Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
  );
  for (const { day, chain } of BACKUPS) {
    await store.put(backupDataKey("main", idOf(day), "base", 0), Buffer.alloc(100));
    await writeBackupManifest(store, manifest(day, chain));
  }
  for (let n = 1; n <= 20; n++) {
    const file = parseWalFileName(seg(n));
    if (file) await store.put(walKey("main", file), Buffer.alloc(10));
  }
  return store;
}

const reasons = (plan: ReturnType<typeof planPrune>) =>
  Object.fromEntries(plan.backups.items.filter((i) => i.keep).map((i) => [i.id, i.reasons]));

describe("prune with chains of incremental backups", () => {
  it("keeps the full a kept incremental needs, and deletes a dead chain incrementals first", async () => {
    const store = await seeded();
    const facts = await gatherPruneFacts(store, "main", memoryLogger());
    expect(facts.backups.map((b) => b.type)).toEqual([
      "full",
      "incr",
      "incr",
      "incr",
      "full",
      "incr",
    ]);
    const plan = planPrune(facts, { last: 1 }, "1h", now);
    expect(reasons(plan)).toEqual({
      [idOf(9)]: ["newest", "last 1/1", "base of the point-in-time window"],
      [idOf(8)]: [`needed by ${idOf(9)} (incr)`],
    });
    expect(plan.deleteBackups.map((b) => b.id)).toEqual([idOf(4), idOf(3), idOf(2), idOf(1)]);
    const manifestsDeleted: string[] = [];
    const remove = store.delete.bind(store);
    store.delete = async (key: string) => {
      if (key.endsWith("/manifest.json")) manifestsDeleted.push(key);
      await remove(key);
    };
    await applyPrune(store, plan, memoryLogger(), { check() {} });
    expect(manifestsDeleted).toEqual([4, 3, 2, 1].map((d) => backupManifestKey("main", idOf(d))));
    const left = await gatherPruneFacts(store, "main", memoryLogger());
    expect(left.backups.map((b) => b.id)).toEqual([idOf(8), idOf(9)]);
    // The WAL the kept full needs only for the incremental is not the point: the
    // incremental restores from its own start, and its start segment is kept.
    expect(left.wal.some((w) => w.name === seg(18))).toBe(true);
  });

  it("an incremental that is the point-in-time window's base keeps its whole chain", async () => {
    const store = await seeded();
    // Window 7d from the 10th 12:00 starts the 3rd 12:00: its base is the 3rd's incremental.
    const plan = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      { last: 1 },
      "7d",
      now,
    );
    expect(reasons(plan)).toEqual({
      [idOf(9)]: ["newest", "last 1/1"],
      [idOf(8)]: [`needed by ${idOf(9)} (incr)`],
      [idOf(3)]: ["base of the point-in-time window"],
      [idOf(2)]: [`needed by ${idOf(3)} (incr)`],
      [idOf(1)]: [`needed by ${idOf(3)} (incr) and 1 more`],
    });
    expect(plan.deleteBackups.map((b) => b.id)).toEqual([idOf(4)]);
    expect(plan.backups.window).toMatchObject({ base: idOf(3), shortened: false });
    expect(plan.horizon.anchor).toBe(idOf(3));
    // WAL from the base's start on stays; the full kept for the chain keeps its own.
    const deleted = plan.deleteWal.map((w) => w.key.slice(-24));
    expect(deleted).not.toContain(seg(6));
    expect(deleted).not.toContain(seg(2));
  });

  it("a pinned incremental keeps its chain", async () => {
    const store = await seeded();
    await writePin(store, backupPinKey("main", idOf(2)), idOf(2), true, new Date(now));
    const plan = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      { last: 1 },
      "1h",
      now,
    );
    expect(reasons(plan)[idOf(2)]).toEqual(["pinned"]);
    expect(reasons(plan)[idOf(1)]).toEqual([`needed by ${idOf(2)} (incr)`]);
    expect(plan.deleteBackups.map((b) => b.id)).toEqual([idOf(4), idOf(3)]);
  });

  it("an incremental manifest without a valid chain is unreadable: it and its objects are left alone", async () => {
    const store = await seeded();
    const bad = {
      ...manifest(4, [1, 2, 3]),
      id: idOf(5),
      chain: [idOf(3), idOf(2)],
    } as BackupManifest;
    await writeBackupManifest(store, bad);
    const log = memoryLogger();
    const facts = await gatherPruneFacts(store, "main", log);
    expect(facts.unreadable).toEqual([idOf(5)]);
    const plan = planPrune(facts, { last: 1 }, "1h", now);
    expect(plan.deleteBackups.map((b) => b.id)).not.toContain(idOf(5));
    expect(plan.deleteDebris).toEqual([]);
  });

  it("a manifest the storage fails to give stops the prune: the backup's WAL is not planned away", async () => {
    const store = await seeded();
    const failing = idOf(1);
    const flaky = Object.assign(Object.create(store) as MemoryStore, {
      get: async (key: string) => {
        if (key === backupManifestKey("main", failing))
          throw new StorageError(`GET ${key} failed after 9 attempts in 60.0s: aborted`, {
            transient: true,
          });
        return store.get(key);
      },
    });
    const failed = await gatherPruneFacts(flaky, "main", memoryLogger()).catch((e) => e);
    expect(failed).toBeInstanceOf(StorageError);
    expect((failed as Error).message).toMatch(/aborted/);
  });
});
