/** Lock heartbeat: a held lock stays fresh while its holder works, and stops being refreshed once released. */
import { describe, expect, it } from "vitest";
import { acquireLock, isStale, readLock } from "../../src/repository/lock.js";
import { MemoryStore } from "../../src/storage/memory.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("lock heartbeat", () => {
  it("refreshes the record while held, so the lock never goes stale under a live holder", async () => {
    const store = new MemoryStore();
    let now = Date.parse("2026-11-21T12:00:00Z");
    const lock = await acquireLock(store, "main", {
      name: "cluster",
      purpose: "backup",
      ttlMs: 60_000,
      refreshMs: 10,
      now: () => new Date(now),
    });
    // 50 s pass three times: without a heartbeat the lock would be stale after the second.
    for (let i = 1; i <= 3; i++) {
      now += 50_000;
      await sleep(60);
      const record = await readLock(store, "main", "cluster");
      expect(record?.refreshedAt).toBe(new Date(now).toISOString());
      expect(record && isStale(record, new Date(now))).toBe(false);
    }
    expect(() => lock.check()).not.toThrow();
    await lock.release();
    expect(await readLock(store, "main", "cluster")).toBeUndefined();
    // Released: no heartbeat brings the record back.
    now += 50_000;
    await sleep(60);
    expect(await readLock(store, "main", "cluster")).toBeUndefined();
  });

  it("is stale exactly once refreshedAt + ttl has passed", () => {
    const record = {
      owner: "h:1:x",
      purpose: "prune",
      acquiredAt: "2026-11-21T12:00:00.000Z",
      refreshedAt: "2026-11-21T12:00:00.000Z",
      ttlMs: 60_000,
    };
    expect(isStale(record, new Date("2026-11-21T12:01:00.000Z"))).toBe(false);
    expect(isStale(record, new Date("2026-11-21T12:01:00.001Z"))).toBe(true);
  });
});
