/** Pins, the delete plans of backups and dump sets, and cluster delete's plan, on the memory store. */
import { describe, expect, it } from "vitest";
import { planClusterDelete, summarizeCluster } from "../../src/catalog/cluster-summary.js";
import { planBackupDelete, planDumpDelete } from "../../src/catalog/plan-delete.js";
import { LockedError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { deleteCatalogEntries } from "../../src/prune/apply-prune.js";
import { type BackupEntry, gatherPruneFacts, planPrune } from "../../src/prune/plan-prune.js";
import { type BackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { writeDumpManifest } from "../../src/repository/dump-manifest.js";
import {
  backupDataKey,
  backupManifestKey,
  backupPinKey,
  clusterPrefix,
  dumpObjectKey,
  dumpPinKey,
  identityKey,
  lockKey,
  walKey,
} from "../../src/repository/keys.js";
import type { LockStatus } from "../../src/repository/lock.js";
import { readPin, writePin } from "../../src/repository/pin.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { ListEntry } from "../../src/storage/object-store.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;
const OLD = "20260101T000000Z";
const BASE = "20261101T000000Z";
const NEW = "20261120T000000Z";
const now = "2026-11-21T00:00:00Z";

function manifest(id: string, time: string, start: number, pinned = false): BackupManifest {
  return makeBackupManifest({
    id,
    pinned,
    startLsn: "0/0",
    stopLsn: "0/0",
    startWal: seg(start),
    stopWal: seg(start),
    startTime: time,
    stopTime: time,
  });
}

async function seeded(
  backups: [string, string, number][] = [
    [OLD, "2026-01-01T00:00:00Z", 2],
    [BASE, "2026-11-01T00:00:00Z", 6],
    [NEW, "2026-11-20T00:00:00Z", 9],
  ],
  pinned: string[] = [],
): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.put(
    identityKey("main"),
    Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
  );
  for (const [id, time, start] of backups) {
    await store.put(backupDataKey("main", id, "base", 0), Buffer.alloc(100));
    await writeBackupManifest(store, manifest(id, time, start, pinned.includes(id)));
  }
  for (let n = 1; n <= 12; n++) {
    const file = parseWalFileName(seg(n));
    if (file) await store.put(walKey("main", file), Buffer.alloc(10));
  }
  return store;
}

const backupsOf = async (store: MemoryStore) =>
  (await gatherPruneFacts(store, "main", memoryLogger())).backups;
const byId = (backups: BackupEntry[], id: string) =>
  backups.find((b) => b.id === id) as BackupEntry;
const options = { pitrWindow: "2d", now, zone: "UTC", allowShorterWindow: false };

describe("pin records", () => {
  it("prune keeps a backup pinned after the fact, with reason pinned, and deletes it once unpinned", async () => {
    const store = await seeded();
    await writePin(store, backupPinKey("main", OLD), OLD, true, new Date(now));
    const pinned = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      { daily: 2, zone: "UTC" },
      "2d",
      now,
    );
    expect(pinned.deleteBackups).toEqual([]);
    expect(pinned.backups.items.find((i) => i.id === OLD)?.reasons).toEqual(["pinned"]);
    // The manifest is not rewritten: its checksummed body still says not pinned.
    expect(await store.head(backupManifestKey("main", OLD))).toBeDefined();

    await writePin(store, backupPinKey("main", OLD), OLD, false, new Date(now));
    const unpinned = planPrune(
      await gatherPruneFacts(store, "main", memoryLogger()),
      { daily: 2, zone: "UTC" },
      "2d",
      now,
    );
    expect(unpinned.deleteBackups.map((b) => b.id)).toEqual([OLD]);
    // Its pin record goes with it.
    expect(unpinned.deleteBackups[0]?.keys).toContain(backupPinKey("main", OLD));
  });

  it("an unpin record overrides a manifest pinned with --pin", async () => {
    const store = await seeded(undefined, [OLD]);
    expect(byId(await backupsOf(store), OLD).pinned).toBe(true);
    await writePin(store, backupPinKey("main", OLD), OLD, false, new Date(now));
    expect(byId(await backupsOf(store), OLD).pinned).toBe(false);
  });

  it("prune keeps a dump set pinned by its record", async () => {
    const store = await seeded();
    for (const [id, time] of [
      ["20261001T000000Z", "2026-10-01T00:00:00Z"],
      ["20261120T000000Z", "2026-11-20T00:00:00Z"],
    ] as const) {
      const globals = {
        key: dumpObjectKey("main", id, "globals"),
        compression: "none" as const,
        rawSize: 1,
        sha256: "0".repeat(64),
        storedSize: 1,
      };
      await store.put(globals.key, Buffer.alloc(1));
      await writeDumpManifest(store, {
        format: 1,
        kind: "dump-set",
        id,
        cluster: "main",
        label: null,
        pinned: false,
        startTime: time,
        stopTime: time,
        pgVersion: "15",
        pgVersionNum: 150000,
        systemIdentifier: "1",
        pgDumpVersion: "15",
        noRolePasswords: false,
        globals,
        databases: [],
      });
    }
    const plan = () =>
      gatherPruneFacts(store, "main", memoryLogger()).then((facts) =>
        planPrune(facts, { last: 1, zone: "UTC" }, "2d", now),
      );
    expect((await plan()).deleteDumps.map((d) => d.id)).toEqual(["20261001T000000Z"]);
    await writePin(
      store,
      dumpPinKey("main", "20261001T000000Z"),
      "20261001T000000Z",
      true,
      new Date(now),
    );
    const pinned = await plan();
    expect(pinned.deleteDumps).toEqual([]);
    expect(pinned.dumps.items.find((i) => i.id === "20261001T000000Z")?.reasons).toEqual([
      "pinned",
    ]);
  });

  it("a damaged pin record counts as pinned", async () => {
    const store = await seeded();
    await store.put(backupPinKey("main", OLD), Buffer.from("{}"));
    expect(await readPin(store, backupPinKey("main", OLD))).toBe(true);
    expect(byId(await backupsOf(store), OLD).pinned).toBe(true);
  });
});

describe("backup delete plan", () => {
  it("refuses the base of the point-in-time window", async () => {
    const backups = await backupsOf(await seeded());
    const plan = planBackupDelete(backups, byId(backups, BASE), options);
    expect(plan.kind).toBe("refused");
    expect(plan.kind === "refused" && plan.reason).toMatch(/base of the point-in-time window 2d/);
    expect(plan.kind === "refused" && plan.hint).toMatch(/--allow-shorter-window/);
  });

  it("deletes the base only when told, and says the window becomes shorter", async () => {
    const backups = await backupsOf(await seeded());
    const plan = planBackupDelete(backups, byId(backups, BASE), {
      ...options,
      allowShorterWindow: true,
    });
    expect(plan.kind).toBe("delete");
    expect(plan.kind === "delete" && plan.window?.restorableFrom).toBe("2026-11-01T00:00:00Z");
  });

  it("deletes a backup older than the base, or the newest, leaving the window as it was", async () => {
    const backups = await backupsOf(await seeded());
    for (const id of [OLD, NEW]) {
      const plan = planBackupDelete(backups, byId(backups, id), options);
      expect(plan.kind).toBe("delete");
      expect(plan.kind === "delete" && plan.window?.shortened).toBe(false);
      expect(plan.entry.keys[0]).toBe(backupManifestKey("main", id));
    }
  });

  it("refuses the oldest backup of a repository younger than the window: the window would shrink", async () => {
    const backups = await backupsOf(await seeded());
    const plan = planBackupDelete(backups, byId(backups, OLD), { ...options, pitrWindow: "400d" });
    expect(plan.kind).toBe("refused");
    expect(plan.kind === "refused" && plan.reason).toMatch(/shortens the point-in-time window/);
  });

  it("refuses the only backup", async () => {
    const backups = await backupsOf(await seeded([[NEW, "2026-11-20T00:00:00Z", 9]]));
    const plan = planBackupDelete(backups, byId(backups, NEW), options);
    expect(plan.kind === "refused" && plan.reason).toMatch(/only backup/);
  });

  it("refuses a pinned backup, even with --allow-shorter-window", async () => {
    const store = await seeded();
    await writePin(store, backupPinKey("main", OLD), OLD, true, new Date(now));
    const backups = await backupsOf(store);
    const plan = planBackupDelete(backups, byId(backups, OLD), {
      ...options,
      allowShorterWindow: true,
    });
    expect(plan.kind === "refused" && plan.reason).toBe(`backup ${OLD} is pinned`);
  });

  it("refuses a pinned dump set, deletes another", () => {
    const entry = { id: "d1", time: now, pinned: true, keys: ["m"], bytes: 1 };
    expect(planDumpDelete(entry).kind).toBe("refused");
    expect(planDumpDelete({ ...entry, pinned: false }).kind).toBe("delete");
  });

  it("the deletes stop as soon as the lock is lost", async () => {
    const store = await seeded();
    const backups = await backupsOf(store);
    let checks = 0;
    const lost = {
      check() {
        if (++checks > 1) throw new LockedError("lost");
      },
    };
    await expect(
      deleteCatalogEntries(store, [byId(backups, OLD)], memoryLogger(), lost),
    ).rejects.toThrow(LockedError);
    expect(await store.head(backupManifestKey("main", OLD))).toBeUndefined();
    expect(await store.head(backupDataKey("main", OLD, "base", 0))).toBeDefined();
  });
});

describe("cluster delete plan", () => {
  const entries = async (store: MemoryStore): Promise<ListEntry[]> => {
    const out: ListEntry[] = [];
    for await (const e of store.list(clusterPrefix("main"))) out.push(e);
    return out;
  };
  const lock = (state: LockStatus["state"]): LockStatus => ({
    name: "cluster",
    state,
    record: {
      owner: "host:1:ab",
      purpose: "backup",
      acquiredAt: now,
      refreshedAt: now,
      ttlMs: 300_000,
    },
  });

  it("deletes every object, manifests first and the identity last, leaving the locks to their holder", async () => {
    const store = await seeded();
    await store.put(lockKey("main", "cluster"), Buffer.from("{}"));
    const plan = planClusterDelete("main", await entries(store), [lock("expired")]);
    expect(plan.kind).toBe("delete");
    if (plan.kind !== "delete") return;
    expect(plan.keys.slice(0, 3).sort()).toEqual(
      [OLD, BASE, NEW].map((id) => backupManifestKey("main", id)).sort(),
    );
    expect(plan.keys.at(-1)).toBe(identityKey("main"));
    expect(plan.keys).not.toContain(lockKey("main", "cluster"));
    expect(plan.keys).toHaveLength((await entries(store)).length - 1);
    expect(plan.summary).toMatchObject({ backups: 3, dumps: 0, walFiles: 12, walBytes: 120 });
    expect(plan.summary.lastArchivedWal).toBe(seg(12));
  });

  it("refuses while a run holds a lock", async () => {
    const store = await seeded();
    for (const state of ["running", "held"] as const) {
      const plan = planClusterDelete("main", await entries(store), [lock(state)]);
      expect(plan.kind === "refused" && plan.reason).toMatch(/is locked: 'cluster' by backup/);
    }
  });

  it("summarizes a cluster from one listing", async () => {
    const store = await seeded();
    const summary = summarizeCluster("main", await entries(store));
    expect(summary).toMatchObject({ cluster: "main", backups: 3, backupBytes: expect.any(Number) });
    const identity = (await store.head(identityKey("main")))?.size ?? 0;
    expect(identity).toBeGreaterThan(0);
    expect(summary.bytes).toBe(
      summary.walBytes + summary.backupBytes + summary.dumpBytes + identity,
    );
    expect(summary.walBytes).toBe(120);
  });
});
