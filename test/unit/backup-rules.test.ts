import { describe, expect, it } from "vitest";
import {
  excludedRelationFiles,
  isDatabaseDirectory,
  isEmptiedDirectory,
  isExcluded,
} from "../../src/backup/exclude.js";
import { LockedError } from "../../src/errors.js";
import { parseBackupLabel } from "../../src/pg/server.js";
import { makeBackupId } from "../../src/repository/backup-manifest.js";
import { acquireLock, readLock } from "../../src/repository/lock.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseLsn, segmentBeforeLsn, segmentRange } from "../../src/wal/names.js";

describe("what a base backup leaves out", () => {
  it.each([
    ["postmaster.pid", true, true],
    ["postmaster.opts", true, true],
    ["standby.signal", true, true],
    ["backup_label", true, true],
    ["base/5/pgsql_tmp", true, true],
    ["base/pgsql_tmp12.3", true, true],
    ["global/pg_internal.init", true, true],
    ["postgresql.conf", true, false],
    ["global/pg_control", true, false],
    ["base/5/postmaster.pid", true, false],
    ["PG_15_202209061/16384/16385", false, false],
  ])("%s (data directory %s) excluded: %s", (path, dataDir, excluded) => {
    expect(isExcluded(path, dataDir)).toBe(excluded);
  });

  it("keeps the runtime directories but not their contents", () => {
    for (const dir of [
      "pg_wal",
      "pg_replslot",
      "pg_dynshmem",
      "pg_notify",
      "pg_serial",
      "pg_snapshots",
      "pg_stat_tmp",
      "pg_subtrans",
    ]) {
      expect(isEmptiedDirectory(dir)).toBe(true);
    }
    expect(isEmptiedDirectory("pg_xact")).toBe(false);
    expect(isEmptiedDirectory("base")).toBe(false);
  });

  it("leaves out temporary relations and all but the init fork of unlogged ones", () => {
    const names = [
      "16384",
      "16384.1",
      "16384_fsm",
      "16390",
      "16390_init",
      "16390_fsm",
      "16390.2",
      "t3_16400",
      "t3_16400_fsm",
      "PG_VERSION",
    ];
    expect([...excludedRelationFiles(names)].sort()).toEqual([
      "16390",
      "16390.2",
      "16390_fsm",
      "t3_16400",
      "t3_16400_fsm",
    ]);
    expect(isDatabaseDirectory("base/5", true)).toBe(true);
    expect(isDatabaseDirectory("global/5", true)).toBe(false);
    expect(isDatabaseDirectory("PG_15_202209061/16384", false)).toBe(true);
  });
});

describe("backup bookkeeping", () => {
  it("makes sortable time-based ids", () => {
    expect(makeBackupId(new Date("2026-11-21T22:05:12.345Z"))).toBe("20261121T220512Z");
  });

  it("reads LSNs and backup labels", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    const label = parseBackupLabel(
      "START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: 0/9000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-11-21 22:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n",
    );
    expect(label).toEqual({ startWal: "000000010000000000000009", timeline: 1, fromStandby: true });
  });

  it("names the WAL a backup needs", () => {
    const mib16 = 16 * 1024 * 1024;
    expect(segmentBeforeLsn(1, 0x9000100n, mib16)).toBe("000000010000000000000009");
    expect(segmentBeforeLsn(1, 0xa000000n, mib16)).toBe("000000010000000000000009");
    expect(segmentRange("0000000100000000000000FE", "000000010000000100000001", mib16)).toEqual([
      "0000000100000000000000FE",
      "0000000100000000000000FF",
      "000000010000000100000000",
      "000000010000000100000001",
    ]);
  });

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
