/** Prune's plan and its crash-safe order, on the memory store. */
import { describe, expect, it } from "vitest";
import { LockedError, StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { applyPrune } from "../../src/prune/apply-prune.js";
import { gatherPruneFacts, planPrune } from "../../src/prune/plan-prune.js";
import { type BackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import {
  backupDataKey,
  backupManifestKey,
  identityKey,
  walKey,
} from "../../src/repository/keys.js";
import { acquireLock } from "../../src/repository/lock.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;

function manifest(id: string, time: string, start: number, stop: number): BackupManifest {
  return makeBackupManifest({
    id,
    startLsn: "0/0",
    stopLsn: "0/0",
    startWal: seg(start),
    stopWal: seg(stop),
    startTime: time,
    stopTime: time,
  });
}

async function seeded(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.put(
    identityKey("main"),
    Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
  );
  for (const [id, time, start] of [
    ["20260101T000000Z", "2026-01-01T00:00:00Z", 2],
    ["20261101T000000Z", "2026-11-01T00:00:00Z", 6],
    ["20261120T000000Z", "2026-11-20T00:00:00Z", 9],
  ] as const) {
    await store.put(backupDataKey("main", id, "base", 0), Buffer.alloc(100));
    await writeBackupManifest(store, manifest(id, time, start, start));
  }
  for (let n = 1; n <= 12; n++) {
    const file = parseWalFileName(seg(n));
    if (file) await store.put(walKey("main", file), Buffer.alloc(10));
  }
  return store;
}

const policy = { daily: 2, zone: "UTC" };
const now = "2026-11-21T00:00:00Z";

describe("prune", () => {
  it("deletes each manifest before its data, and WAL last", async () => {
    const store = await seeded();
    const facts = await gatherPruneFacts(store, "main", memoryLogger());
    const plan = planPrune(facts, policy, "2d", now);
    expect(plan.deleteBackups.map((b) => b.id)).toEqual(["20260101T000000Z"]);
    expect(plan.horizon.anchor).toBe("20261101T000000Z");
    expect(plan.deleteWal.map((w) => w.key.slice(-24))).toEqual([
      seg(1),
      seg(2),
      seg(3),
      seg(4),
      seg(5),
    ]);
    const order: string[] = [];
    const remove = store.delete.bind(store);
    store.delete = async (key: string) => {
      order.push(key);
      await remove(key);
    };
    await applyPrune(store, plan, memoryLogger(), { check() {} });
    expect(order[0]).toBe(backupManifestKey("main", "20260101T000000Z"));
    expect(order[1]).toBe(backupDataKey("main", "20260101T000000Z", "base", 0));
    expect(order.slice(2).every((k) => k.includes("/wal/"))).toBe(true);
    const again = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      policy,
      "2d",
      now,
    );
    expect(
      [again.deleteBackups, again.deleteWal, again.deleteDebris]
        .flat()
        .map((x) => ("key" in x ? x.key : x.id)),
    ).toEqual([]);
  });

  it("finishes a prune that crashed after removing a manifest: the rest is debris", async () => {
    const store = await seeded();
    await store.delete(backupManifestKey("main", "20260101T000000Z"));
    const plan = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      policy,
      "1d",
      now,
    );
    expect(plan.deleteDebris.map((d) => d.key)).toEqual([
      backupDataKey("main", "20260101T000000Z", "base", 0),
    ]);
    await applyPrune(store, plan, memoryLogger(), { check() {} });
    expect(await store.head(backupDataKey("main", "20260101T000000Z", "base", 0))).toBeUndefined();
  });

  it("never deletes WAL while no backup exists", async () => {
    const store = new MemoryStore();
    await store.put(
      identityKey("main"),
      Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
    );
    const file = parseWalFileName(seg(1));
    if (file) await store.put(walKey("main", file), Buffer.alloc(10));
    const plan = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      policy,
      "1d",
      now,
    );
    expect(plan.deleteWal).toEqual([]);
  });

  it("never shortens the point-in-time window: keep-last 1 keeps the window's base and its WAL", async () => {
    const store = await seeded();
    const facts = await gatherPruneFacts(store, "main", memoryLogger());
    // The window's oldest second (2026-10-22) needs the backup of 2026-01-01.
    const plan = planPrune(facts, { last: 1 }, "30d", now);
    expect(plan.deleteBackups.map((b) => b.id)).toEqual(["20261101T000000Z"]);
    const base = plan.backups.items.find((i) => i.id === "20260101T000000Z");
    expect(base?.keep).toBe(true);
    expect(base?.reasons).toEqual(["base of the point-in-time window"]);
    expect(plan.horizon.anchor).toBe("20260101T000000Z");
    expect(plan.deleteWal.map((w) => w.key.slice(-24))).toEqual([seg(1)]);
    expect(plan.backups.window).toMatchObject({ shortened: false, base: "20260101T000000Z" });
    // Only an explicit choice lets the policy delete it; the plan then says so.
    const shorter = planPrune(facts, { last: 1 }, "30d", now, { allowShorterWindow: true });
    expect(shorter.deleteBackups.map((b) => b.id).sort()).toEqual([
      "20260101T000000Z",
      "20261101T000000Z",
    ]);
    expect(shorter.backups.window).toMatchObject({
      shortened: true,
      baseKept: false,
      restorableFrom: "2026-11-20T00:00:00Z",
    });
  });

  it("stops deleting once its lock ran out because the heartbeat kept failing", async () => {
    const store = await seeded();
    const plan = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      { last: 1 },
      "1h",
      now,
    );
    const planned = plan.deleteBackups.flatMap((b) => b.keys).length + plan.deleteWal.length;
    expect(planned).toBeGreaterThan(8);
    let clock = Date.parse(now);
    const lock = await acquireLock(store, "main", {
      name: "cluster",
      purpose: "prune",
      ttlMs: 60_000,
      refreshMs: 5,
      now: () => new Date(clock),
    });
    // From now on the repository accepts deletes but no lock refresh, and each delete
    // takes 10 s (8 run at once): the lock expires (for others) 60 s after it was taken,
    // and no delete may start after that.
    store.put = async () => {
      throw new StorageError("injected: cannot write the lock", { transient: false });
    };
    const remove = store.delete.bind(store);
    const deletedAt: number[] = [];
    store.delete = async (key: string) => {
      deletedAt.push(clock);
      clock += 10_000;
      await new Promise((r) => setTimeout(r, 10));
      await remove(key);
    };
    await expect(applyPrune(store, plan, memoryLogger(), lock)).rejects.toBeInstanceOf(LockedError);
    expect(deletedAt.length).toBeGreaterThan(0);
    expect(deletedAt.length).toBeLessThan(planned);
    for (const at of deletedAt) expect(at).toBeLessThan(Date.parse(now) + 60_000);
    await lock.release().catch(() => undefined);
  });
});
