/** Repository locks: one holder, stale takeover, heartbeat, lost-lock detection. */
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { LockedError, StorageError } from "../../src/errors.js";
import { processStart } from "../../src/local-process.js";
import {
  acquireLock,
  breakLock,
  inspectLocks,
  isStale,
  type LockRecord,
  readLock,
} from "../../src/repository/lock.js";
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

const KEY = "v1/clusters/main/locks/cluster.json";
/** A fresh record (refreshed now, 5 minutes to live) of a holder, as a crashed run leaves it. */
function heldBy(holder: Partial<LockRecord>): LockRecord {
  const at = new Date().toISOString();
  return {
    owner: `${holder.host ?? hostname()}:${holder.pid ?? 1}:dead`,
    purpose: "prune",
    acquiredAt: at,
    refreshedAt: at,
    ttlMs: 300_000,
    ...holder,
  };
}
const options = {
  name: "cluster",
  purpose: "backup",
  ttlMs: 300_000,
  refreshMs: 3_600_000,
  now: () => new Date(),
};
/** The PID of a process that has exited. */
const deadPid = (): number => {
  const pid = spawnSync("true").pid;
  if (pid === undefined) throw new Error("no child pid");
  return pid;
};

describe("locks of processes that are gone", () => {
  it("takes over at once a lock whose holder's process on this host is gone (kill -9)", async () => {
    const store = new MemoryStore();
    await store.put(KEY, Buffer.from(JSON.stringify(heldBy({ host: hostname(), pid: deadPid() }))));
    const lock = await acquireLock(store, "main", options);
    const record = await readLock(store, "main", "cluster");
    expect(record?.owner).toBe(lock.record.owner);
    // The new record names this process, so that the next run can judge it the same way.
    expect(record).toMatchObject({ host: hostname(), pid: process.pid });
    expect(record?.start).toBe(processStart(process.pid));
    await lock.release();
  });

  it("takes over a lock whose PID was reused by another process (start time differs)", async () => {
    const store = new MemoryStore();
    const boot = processStart(process.pid)?.split("/")[0];
    if (boot === undefined) return; // no /proc: start times are unknown here
    const reused = heldBy({ host: hostname(), pid: process.pid, start: `${boot}/1` });
    await store.put(KEY, Buffer.from(JSON.stringify(reused)));
    await (await acquireLock(store, "main", options)).release();
  });

  it("waits for a live holder, and for one on another host it cannot judge", async () => {
    const store = new MemoryStore();
    const alive = heldBy({ host: hostname(), pid: process.pid });
    const start = processStart(process.pid);
    if (start !== undefined) alive.start = start;
    await store.put(KEY, Buffer.from(JSON.stringify(alive)));
    await expect(acquireLock(store, "main", options)).rejects.toBeInstanceOf(LockedError);
    await store.put(
      KEY,
      Buffer.from(JSON.stringify(heldBy({ host: `not-${hostname()}`, pid: deadPid() }))),
    );
    await expect(acquireLock(store, "main", options)).rejects.toMatchObject({
      hint: expect.stringMatching(/pgha lock break/),
    });
    // Records of older versions name no PID: they wait for the TTL as before.
    const old = heldBy({});
    delete old.host;
    delete old.pid;
    await store.put(KEY, Buffer.from(JSON.stringify(old)));
    await expect(acquireLock(store, "main", options)).rejects.toBeInstanceOf(LockedError);
  });

  it("lock break: inspects the locks, and removes one only while it is the record it saw", async () => {
    const store = new MemoryStore();
    const gone = heldBy({ host: hostname(), pid: deadPid() });
    const other = heldBy({ host: `not-${hostname()}`, pid: 7 });
    await store.put(KEY, Buffer.from(JSON.stringify(gone)));
    await store.put("v1/clusters/main/locks/dump.json", Buffer.from(JSON.stringify(other)));
    const seen = await inspectLocks(store, "main", new Date());
    expect(seen.map((s) => [s.name, s.state])).toEqual([
      ["cluster", "abandoned"],
      ["dump", "held"],
    ]);
    const [cluster, dump] = seen;
    if (!cluster || !dump) throw new Error("two locks expected");
    // The dump lock changed hands since it was inspected: not removed.
    await store.put("v1/clusters/main/locks/dump.json", Buffer.from(JSON.stringify(heldBy({}))));
    expect(await breakLock(store, "main", dump)).toBe(false);
    expect(await readLock(store, "main", "dump")).toBeDefined();
    expect(await breakLock(store, "main", cluster)).toBe(true);
    expect(await readLock(store, "main", "cluster")).toBeUndefined();
  });
});

describe("a lock whose heartbeat keeps failing", () => {
  it("is lost before its time is up: check() throws once refreshing failed for most of the TTL", async () => {
    const store = new MemoryStore();
    let now = Date.parse("2026-11-21T12:00:00Z");
    const lock = await acquireLock(store, "main", {
      ...options,
      ttlMs: 60_000,
      refreshMs: 5,
      now: () => new Date(now),
    });
    let failedPuts = 0;
    store.put = async () => {
      failedPuts++;
      throw new StorageError("injected: the repository is unreachable", { transient: true });
    };
    now += 30_000;
    await sleep(30);
    expect(failedPuts).toBeGreaterThan(0);
    expect(() => lock.check()).not.toThrow(); // 30 s of 60: it may still be refreshed
    now += 25_000; // 55 s without a refresh: others may take it over 5 s from now
    await sleep(30);
    expect(() => lock.check()).toThrow(/ran out/);
    await lock.release();
  });
});
