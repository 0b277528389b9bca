/** Repository locks: one holder, stale takeover, heartbeat, lost-lock detection. */
import { describe, expect, it } from "vitest";
import { LockedError } from "../../src/errors.js";
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

describe("lock takeover", () => {
  it("locks a cluster once, and lets a stale lock be taken over", async () => {
    const store = new MemoryStore();
    let now = new Date("2026-11-21T12:00:00Z");
    const options = {
      name: "cluster",
      purpose: "backup",
      ttlMs: 60_000,
      refreshMs: 3_600_000,
      now: () => now,
    };
    const first = await acquireLock(store, "main", options);
    await expect(acquireLock(store, "main", options)).rejects.toBeInstanceOf(LockedError);
    await expect(acquireLock(store, "other", options)).resolves.toBeDefined();
    now = new Date("2026-11-21T12:02:00Z");
    const second = await acquireLock(store, "main", options);
    expect((await readLock(store, "main", "cluster"))?.acquiredAt).toBe("2026-11-21T12:02:00.000Z");
    await first.release(); // no longer the holder: must not remove the new lock
    expect(await readLock(store, "main", "cluster")).toBeDefined();
    await second.release();
    expect(await readLock(store, "main", "cluster")).toBeUndefined();
  });

  it("lets only one of two runs take over a stale lock", async () => {
    const store = new MemoryStore();
    const stale = {
      name: "cluster",
      purpose: "backup",
      ttlMs: 1000,
      refreshMs: 3_600_000,
      now: () => new Date(0),
    };
    await acquireLock(store, "main", stale);
    const fresh = { ...stale, now: () => new Date() };
    const results = await Promise.allSettled([
      acquireLock(store, "main", fresh),
      acquireLock(store, "main", fresh),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });

  it("notices when another run took its lock over, and never writes over it", async () => {
    const store = new MemoryStore();
    const lock = await acquireLock(store, "main", {
      name: "cluster",
      purpose: "backup",
      ttlMs: 60_000,
      refreshMs: 20,
      now: () => new Date(),
    });
    const other = { ...(await readLock(store, "main", "cluster")), owner: "elsewhere:1:x" };
    await store.put("v1/clusters/main/locks/cluster.json", Buffer.from(JSON.stringify(other)));
    await new Promise((r) => setTimeout(r, 80));
    expect(() => lock.check()).toThrow(LockedError);
    expect((await readLock(store, "main", "cluster"))?.owner).toBe("elsewhere:1:x");
    await lock.release();
    expect((await readLock(store, "main", "cluster"))?.owner).toBe("elsewhere:1:x");
  });
});
