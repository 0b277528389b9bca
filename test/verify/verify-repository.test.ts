/**
 * pgha verify over a repository in memory: WAL gaps, damaged, missing and resized objects
 * of backups, dump sets and WAL named; --sample, --since and --backup; the result
 * recorded per backup for backup list.
 */
import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { compressBuffer } from "../../src/compress/codec.js";
import { StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import {
  type BackupManifest,
  type BackupObjectEntry,
  writeBackupManifest,
} from "../../src/repository/backup-manifest.js";
import { type DumpManifest, writeDumpManifest } from "../../src/repository/dump-manifest.js";
import {
  backupDataKey,
  backupManifestKey,
  backupPrefix,
  backupVerifyKey,
  dumpManifestKey,
  dumpObjectKey,
  dumpPrefix,
  dumpVerifyKey,
  walKey,
  walPrefix,
} from "../../src/repository/keys.js";
import { acquireLock } from "../../src/repository/lock.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { readVerifyRecord } from "../../src/repository/verify-record.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { Leftover, ListEntry, ListOptions } from "../../src/storage/object-store.js";
import { parseSample } from "../../src/verify/sample.js";
import { type VerifyRequest, verifyRepository } from "../../src/verify/verify-repository.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { makeSegment } from "../helpers/segments.js";

const CLUSTER = "main";
const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const seg = (n: number, tl = 1) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;
const lsnOf = (n: number, offset = 0x28) =>
  `0/${(n * 0x1000000 + offset).toString(16).toUpperCase()}`;

async function putWal(store: MemoryStore, name: string, zstd = false): Promise<string> {
  const file = parseWalFileName(name);
  if (!file) throw new Error(name);
  // A segment as PostgreSQL lays it out (1 MiB): its long page header names it.
  const raw =
    file.kind === "segment"
      ? makeSegment(file.timeline, file.log, file.seg)
      : Buffer.from(`wal ${name} `.repeat(50));
  const body = zstd ? await compressBuffer({ algorithm: "zstd", level: 3 }, raw) : raw;
  const key = walKey(CLUSTER, file);
  await store.put(key, body, {
    metadata: encodeWalMeta(
      { sha256: sha(raw), rawSize: raw.length, compression: zstd ? "zstd" : "none" },
      new Date("2026-11-21T12:00:00Z"),
    ),
  });
  return key;
}

/** A backup of `objects` bundles (stored as they are), WAL start..stop on timeline 1. */
async function putBackup(
  store: MemoryStore,
  id: string,
  start: number,
  stop: number,
  objects = 3,
  over: Partial<BackupManifest> = {},
): Promise<BackupManifest> {
  const entries: BackupObjectEntry[] = [];
  for (let i = 0; i < objects; i++) {
    const data = Buffer.from(`bundle ${id} ${i} `.repeat(20 + i));
    const key = backupDataKey(CLUSTER, id, "base", i);
    await store.put(key, data);
    entries.push({
      part: "base",
      key,
      compression: "none",
      rawSize: data.length,
      storedSize: data.length,
      storedSha256: sha(data),
    });
  }
  const manifest = makeBackupManifest({
    id,
    startWal: seg(start),
    stopWal: seg(stop),
    startLsn: lsnOf(start),
    stopLsn: lsnOf(stop, 0x100),
    startTime: "2026-11-21T10:00:00Z",
    stopTime: "2026-11-21T10:05:00Z",
    objects: entries,
    storedBytes: entries.reduce((s, o) => s + o.storedSize, 0),
    ...over,
  });
  await writeBackupManifest(store, manifest);
  return manifest;
}

async function putDumpSet(store: MemoryStore, id: string): Promise<DumpManifest> {
  const object = async (which: "globals" | number) => {
    const raw = Buffer.from(`dump ${id} ${which} `.repeat(40));
    const stored = await compressBuffer({ algorithm: "zstd", level: 3 }, raw);
    const key = dumpObjectKey(CLUSTER, id, which);
    await store.put(key, stored);
    return {
      key,
      compression: "zstd" as const,
      rawSize: raw.length,
      sha256: sha(raw),
      storedSize: stored.length,
    };
  };
  const manifest: DumpManifest = {
    format: 1,
    kind: "dump-set",
    id,
    cluster: CLUSTER,
    label: null,
    pinned: false,
    startTime: "2026-11-21T11:00:00Z",
    stopTime: "2026-11-21T11:01:00Z",
    pgVersion: "15",
    pgVersionNum: 150000,
    systemIdentifier: "1",
    pgDumpVersion: "15",
    noRolePasswords: true,
    globals: await object("globals"),
    databases: [{ ...(await object(1)), name: "app", owner: "app", format: "custom" }],
  };
  await writeDumpManifest(store, manifest);
  return manifest;
}

const ALL: VerifyRequest = { backupId: undefined, since: undefined, sample: undefined };

function verify(store: MemoryStore, request: Partial<VerifyRequest> = {}, random = () => 0) {
  return verifyRepository(
    {
      store,
      cluster: CLUSTER,
      log: memoryLogger(),
      now: () => new Date("2026-12-01T19:00:00Z"),
      random,
      jobs: 2,
    },
    { ...ALL, ...request },
  );
}

describe("verify", () => {
  let store: MemoryStore;
  let backup: BackupManifest;
  let walKeys: Map<string, string>;

  // Backup A needs segments 2..3; the archive holds 2..8 (7 zstd-compressed).
  beforeEach(async () => {
    store = new MemoryStore();
    backup = await putBackup(store, "20261121T100000Z", 2, 3);
    walKeys = new Map();
    for (let n = 2; n <= 8; n++) walKeys.set(seg(n), await putWal(store, seg(n), n === 7));
    await putDumpSet(store, "20261121T110000Z");
  });

  it("finds nothing wrong in a sound repository, hashes every object and records the result", async () => {
    const report = await verify(store);
    expect(report.findings).toEqual([]);
    expect(report.exit).toBe("ok");
    expect(report.backups).toEqual([
      {
        id: backup.id,
        ok: true,
        objects: 3,
        hashed: 3,
        restorable: true,
        gaps: [],
        failedChain: [],
        dataOk: true,
      },
    ]);
    expect(report.dumpSets).toEqual([{ id: "20261121T110000Z", ok: true, objects: 2, hashed: 2 }]);
    expect(report.wal).toEqual({ objects: 7, hashed: 7 });
    const record = await readVerifyRecord(store, backupVerifyKey(CLUSTER, backup.id));
    expect(record).toMatchObject({
      id: backup.id,
      time: "2026-12-01T19:00:00.000Z",
      ok: true,
      objects: 3,
      hashed: 3,
      restorable: true,
      dataOk: true,
    });
    expect(await readVerifyRecord(store, dumpVerifyKey(CLUSTER, "20261121T110000Z"))).toMatchObject(
      { ok: true },
    );
  });

  it("warns of objects no manifest accounts for (a killed backup or dump, dead writes) and still passes", async () => {
    class WithLeftovers extends MemoryStore {
      async listLeftovers(_prefix: string, before: Date): Promise<Leftover[]> {
        expect(before.getTime()).toBe(Date.parse("2026-12-01T18:00:00Z"));
        return [{ path: "v1/clusters/main/wal/.tmp-x", size: 4096, lastModified: new Date(0) }];
      }
    }
    const withDebris = new WithLeftovers();
    await putBackup(withDebris, backup.id, 2, 3);
    for (let n = 2; n <= 8; n++) await putWal(withDebris, seg(n));
    await withDebris.put(backupDataKey(CLUSTER, "20261121T130000Z", "base", 0), Buffer.alloc(2048));
    await withDebris.put(backupDataKey(CLUSTER, "20261121T130000Z", "base", 1), Buffer.alloc(2048));
    await withDebris.put(dumpObjectKey(CLUSTER, "20261121T140000Z", 1), Buffer.alloc(10));
    const report = await verify(withDebris);
    expect(report.findings.map((f) => [f.kind, f.severity, f.object])).toEqual([
      ["unfinished", "warning", backupPrefix(CLUSTER, "20261121T130000Z")],
      ["unfinished", "warning", dumpPrefix(CLUSTER, "20261121T140000Z")],
      ["unfinished", "warning", "v1/clusters/main/wal/.tmp-x"],
    ]);
    expect(report.findings[0]?.message).toMatch(
      /^backup 20261121T130000Z has 2 objects \(4\.0 KiB\) and no manifest: a run stopped before it finished.*pgha prune deletes them/,
    );
    expect(report.warnings).toBe(3);
    expect(report.exit).toBe("ok");
    expect(report.backups.map((b) => [b.id, b.ok])).toEqual([[backup.id, true]]);
    // --backup is about one backup: not the rest of the repository.
    expect((await verify(withDebris, { backupId: backup.id })).findings).toEqual([]);

    // While a backup holds the cluster's lock, its objects are most likely its own.
    const lock = await acquireLock(withDebris, CLUSTER, {
      name: "cluster",
      purpose: "backup",
      ttlMs: 60_000,
      now: () => new Date(),
      log: memoryLogger(),
    });
    try {
      const during = await verify(withDebris);
      expect(during.findings[0]?.message).toMatch(
        new RegExp(
          `no manifest: a backup \\(.*pid ${process.pid}\\) runs now, which most likely writes`,
        ),
      );
      expect(during.findings[1]?.message, "the dump lock is not held").toMatch(/a run stopped/);
    } finally {
      await lock.release();
    }
    // A verify record alone (its backup deleted) is said to be that.
    await withDebris.put(backupVerifyKey(CLUSTER, "20261121T150000Z"), Buffer.from("{}"));
    const left = await verify(withDebris);
    expect(left.findings.map((f) => f.object)).toContain(backupPrefix(CLUSTER, "20261121T150000Z"));
    expect(left.findings.find((f) => f.object.includes("20261121T150000Z"))?.message).toMatch(
      /only a verify record or pin of one that was deleted/,
    );
  });

  it("finds a deleted WAL segment in the window as a gap, and its backup unrestorable when it needs it", async () => {
    await store.delete(walKeys.get(seg(5)) ?? "");
    const later = await verify(store);
    expect(later.exit).toBe("unrestorable");
    expect(later.findings).toEqual([
      expect.objectContaining({ kind: "wal-gap", severity: "error", object: seg(5), timeline: 1 }),
    ]);
    expect(later.findings[0]?.message).toContain(`WAL segment ${seg(5)} is missing`);
    expect(later.backups[0]).toMatchObject({ ok: true, restorable: true });

    await store.delete(walKeys.get(seg(3)) ?? "");
    await store.delete(walKeys.get(seg(4)) ?? "");
    const needed = await verify(store);
    expect(needed.exit).toBe("unrestorable");
    const kinds = needed.findings.map((f) => [f.kind, f.object]);
    expect(kinds).toContainEqual(["wal-gap", `${seg(3)}..${seg(5)}`]);
    expect(kinds).toContainEqual(["unrestorable", backup.id]);
    expect(needed.backups[0]).toMatchObject({ ok: false, restorable: false, gaps: [seg(3)] });
    const record = await readVerifyRecord(store, backupVerifyKey(CLUSTER, backup.id));
    expect(record).toMatchObject({ ok: false, restorable: false });
    expect(record?.findings.join("\n")).toContain(seg(3));
  });

  it("names a corrupted backup object (checksum), a resized one (size) and a deleted one (missing)", async () => {
    const [first, second, third] = backup.objects;
    if (!first || !second || !third) throw new Error("three objects");
    const bytes = Buffer.from(`bundle ${backup.id} 0 `.repeat(20));
    bytes[5] = (bytes[5] ?? 0) ^ 0xff;
    store.corrupt(first.key, bytes);
    store.corrupt(second.key, Buffer.from("short"));
    await store.delete(third.key);
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    expect(report.findings.map((f) => [f.kind, f.object, f.backup])).toEqual([
      ["checksum", first.key, backup.id],
      ["size", second.key, backup.id],
      ["missing", third.key, backup.id],
    ]);
    expect(report.findings[0]?.message).toMatch(/is corrupt: its sha256 is [0-9a-f]{64}/);
    expect(report.backups[0]).toMatchObject({ ok: false, restorable: true, hashed: 1 });
    expect(await readVerifyRecord(store, backupVerifyKey(CLUSTER, backup.id))).toMatchObject({
      ok: false,
    });
  });

  it("names an object whose stored form the store cannot read (a local file's corrupt header) and goes on", async () => {
    // FsStore.get throws a StorageError marked damaged for a file whose pgha header is
    // corrupt: verify must report it as corrupt, not stop before the WAL check.
    const damaged = backup.objects[1]?.key ?? "";
    const get = store.get.bind(store);
    store.get = async (key: string) => {
      if (key === damaged) {
        throw new StorageError(`/repo/${key} has a corrupt header`, {
          transient: false,
          damaged: true,
        });
      }
      return get(key);
    };
    await store.delete(walKeys.get(seg(6)) ?? "");
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    expect(report.findings.map((f) => [f.kind, f.object]).sort()).toEqual(
      [
        ["checksum", damaged],
        ["wal-gap", expect.anything()],
      ].sort(),
    );
    expect(report.findings.find((f) => f.object === damaged)?.message).toMatch(
      /is corrupt: .*has a corrupt header/,
    );
    expect(await readVerifyRecord(store, backupVerifyKey(CLUSTER, backup.id))).toMatchObject({
      ok: false,
    });
  });

  it("names a backup and a dump manifest whose stored form the store cannot read (a local file's corrupt header) and goes on", async () => {
    // A byte flipped in a local manifest's pgha header: FsStore.get throws a StorageError
    // marked damaged. verify stopped there with exit 7 (storage); it is a damaged
    // manifest: a `manifest` finding, exit 6, and the rest is still checked.
    const later = await putBackup(store, "20261121T120000Z", 3, 3);
    const damaged = new Set([
      backupManifestKey(CLUSTER, backup.id),
      dumpManifestKey(CLUSTER, "20261121T110000Z"),
    ]);
    const get = store.get.bind(store);
    store.get = async (key: string) => {
      if (damaged.has(key)) {
        throw new StorageError(`/repo/${key} has a corrupt header`, {
          transient: false,
          damaged: true,
        });
      }
      return get(key);
    };
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    const manifests = report.findings.filter((f) => f.kind === "manifest");
    expect(manifests.map((f) => f.backup ?? f.dumpSet).sort()).toEqual([
      "20261121T100000Z",
      "20261121T110000Z",
    ]);
    expect(manifests[0]?.message).toMatch(/has a corrupt header/);
    expect(report.backups.map((b) => [b.id, b.ok])).toEqual([[later.id, true]]);
    expect(report.wal.hashed).toBe(7);
  });

  it("integrity wins over a gap in the exit code, and both are listed", async () => {
    await store.delete(walKeys.get(seg(6)) ?? "");
    store.corrupt(backup.objects[0]?.key ?? "", Buffer.alloc(backup.objects[0]?.storedSize ?? 0));
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    expect(report.findings.map((f) => f.kind).sort()).toEqual(["checksum", "wal-gap"]);
  });

  it("decompresses and hashes WAL and dump objects against their metadata and manifest", async () => {
    const walKey7 = walKeys.get(seg(7)) ?? "";
    const stored = (await store.head(walKey7))?.size ?? 0;
    store.corrupt(walKey7, Buffer.alloc(stored, 7)); // not zstd any more
    store.corrupt(walKeys.get(seg(4)) ?? "", Buffer.from(`wal ${seg(4)} `.repeat(49)));
    const dumpKey = dumpObjectKey(CLUSTER, "20261121T110000Z", 1);
    const dumpSize = (await store.head(dumpKey))?.size ?? 0;
    store.corrupt(dumpKey, Buffer.alloc(dumpSize, 1));
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    expect(report.findings.map((f) => [f.kind, f.object])).toEqual([
      ["checksum", dumpKey],
      ["checksum", seg(4)],
      ["checksum", seg(7)],
    ]);
    expect(report.findings[1]?.message).toMatch(/decompresses to \d+ bytes .* its metadata says/);
    expect(report.findings[2]?.message).toMatch(/does not decompress/);
    expect(report.findings[0]?.dumpSet).toBe("20261121T110000Z");
    expect(report.dumpSets[0]?.ok).toBe(false);
  });

  it("names a sound segment moved whole (object and metadata) to another segment's name", async () => {
    // Segments 4 and 5 swapped: each checks against its own metadata, but its page header
    // names the other segment (wal-fetch refuses it; verify must say so before a restore).
    const four = walKeys.get(seg(4)) ?? "";
    const five = walKeys.get(seg(5)) ?? "";
    const [a, b] = [await store.get(four), await store.get(five)];
    const bytes = async (got: typeof a) => {
      const chunks: Buffer[] = [];
      for await (const chunk of got.body) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    const [bodyA, bodyB] = [await bytes(a), await bytes(b)];
    await store.put(four, bodyB, { metadata: b.info.metadata });
    await store.put(five, bodyA, { metadata: a.info.metadata });
    const report = await verify(store);
    expect(report.exit).toBe("integrity");
    expect(report.findings.map((f) => [f.kind, f.object])).toEqual([
      ["checksum", seg(4)],
      ["checksum", seg(5)],
    ]);
    expect(report.findings[0]?.message).toMatch(/holds another WAL file than its name says/);
  });

  it("--sample hashes only some objects of each kind but checks every one for presence and size", async () => {
    const big = await putBackup(store, "20261121T120000Z", 3, 3, 10);
    // A corrupted object the sample does not read goes unnoticed; a deleted one does not.
    store.corrupt(big.objects[9]?.key ?? "", Buffer.alloc(big.objects[9]?.storedSize ?? 0));
    await store.delete(big.objects[8]?.key ?? "");
    // random() = 0 picks the first objects in order.
    const report = await verify(store, { sample: parseSample("2") });
    expect(report.backups.map((b) => [b.id, b.objects, b.hashed])).toEqual([
      [backup.id, 3, 2],
      [big.id, 10, 2],
    ]);
    expect(report.wal).toEqual({ objects: 7, hashed: 2 });
    expect(report.dumpSets[0]?.hashed).toBe(2);
    expect(report.findings.map((f) => [f.kind, f.object])).toEqual([
      ["missing", big.objects[8]?.key],
    ]);
    const record = await readVerifyRecord(store, backupVerifyKey(CLUSTER, big.id));
    expect(record).toMatchObject({ objects: 10, hashed: 2, ok: false });

    // A percentage rounds up: 10% of 10 present objects is 1, of 3 is 1; random near 1
    // picks the last.
    const percent = await verify(store, { sample: parseSample("10%") }, () => 0.999);
    expect(percent.backups.map((b) => b.hashed)).toEqual([1, 1]);
    expect(percent.findings.map((f) => [f.kind, f.object])).toEqual([
      ["missing", big.objects[8]?.key],
      ["checksum", big.objects[9]?.key],
    ]);
  });

  it("--backup verifies one backup and the WAL its restore replays; --since skips what is older", async () => {
    const other = await putBackup(store, "20261121T120000Z", 5, 5);
    store.corrupt(other.objects[0]?.key ?? "", Buffer.alloc(other.objects[0]?.storedSize ?? 0));
    await store.delete(walKeys.get(seg(6)) ?? ""); // after both backups: a window gap only
    const one = await verify(store, { backupId: backup.id });
    expect(one.findings).toEqual([]);
    expect(one.exit).toBe("ok");
    expect(one.backups.map((b) => b.id)).toEqual([backup.id]);
    expect(one.dumpSets).toEqual([]);
    expect(one.wal).toEqual({ objects: 2, hashed: 2 }); // segments 2 and 3

    await expect(verify(store, { backupId: "20201121T100000Z" })).rejects.toThrow(
      /no backup 20201121T100000Z/,
    );
    // Everything stored in memory is newer than yesterday; nothing is newer than tomorrow.
    const none = await verify(store, { since: Date.now() + 86_400_000 });
    expect(none.backups).toEqual([]);
    expect(none.wal).toEqual({ objects: 0, hashed: 0 });
    expect(none.findings.map((f) => f.kind)).toEqual(["wal-gap"]);
  });

  describe("a chain (full A, increments B and C)", () => {
    const [B, C] = ["20261121T120000Z", "20261121T130000Z"];
    const incr = (parent: string, chain: string[]) =>
      ({ type: "incr", parent, chain, format: 2 }) as Partial<BackupManifest>;
    beforeEach(async () => {
      await putBackup(store, B, 4, 4, 2, incr(backup.id, [backup.id]));
      await putBackup(store, C, 5, 5, 2, incr(B, [backup.id, B]));
      const first = backup.objects[0];
      store.corrupt(first?.key ?? "", Buffer.alloc(first?.storedSize ?? 0));
    });

    it("--backup of an increment checks every backup of its chain and fails with a member", async () => {
      const report = await verify(store, { backupId: C });
      expect(report.exit).toBe("integrity");
      expect(report.backups.map((b) => [b.id, b.ok, b.failedChain])).toEqual([
        [backup.id, false, []],
        [B, false, [backup.id]],
        [C, false, [backup.id]],
      ]);
      expect(report.findings.map((f) => [f.kind, f.backup])).toEqual([["checksum", backup.id]]);
      // The WAL of each checked backup: A's 2..3, B's 4, C's 5.
      expect(report.wal).toEqual({ objects: 4, hashed: 4 });
      const record = await readVerifyRecord(store, backupVerifyKey(CLUSTER, C));
      expect(record).toMatchObject({ ok: false, restorable: true });
      expect(record?.findings.join("\n")).toContain(
        `backup ${backup.id} of its chain: ${report.findings[0]?.message}`,
      );
    });

    it("--since: a member older than it counts as its last verify found it", async () => {
      await verify(store, { backupId: backup.id }); // A's record: failed
      const D = "20261122T100000Z"; // an increment of C, ended after --since
      await putBackup(store, D, 6, 6, 1, {
        ...incr(C, [backup.id, B, C]),
        startTime: "2026-11-22T10:00:00Z",
        stopTime: "2026-11-22T10:05:00Z",
      });
      const since = Date.parse("2026-11-22T00:00:00Z");
      // The WAL is stored now: only D's objects and no WAL are older than --since here.
      const report = await verify(store, { since });
      expect(report.backups.map((b) => [b.id, b.ok, b.failedChain])).toEqual([
        [D, false, [backup.id]],
      ]);
      expect(report.exit).toBe("unrestorable");
      expect(report.findings.map((f) => [f.kind, f.backup])).toContainEqual(["unrestorable", D]);
      const record = await readVerifyRecord(store, backupVerifyKey(CLUSTER, D));
      expect(record?.ok).toBe(false);
      expect(record?.findings.join("\n")).toContain(
        `the last verify of backup ${backup.id} of its chain failed (not read by this run)`,
      );
    });

    it("a full verify marks every backup whose chain holds a failed member, not the others", async () => {
      const D = "20261121T140000Z"; // a new full after the chain: sound
      await putBackup(store, D, 6, 6, 1);
      const report = await verify(store);
      expect(report.exit).toBe("integrity");
      expect(report.backups.map((b) => [b.id, b.ok])).toEqual([
        [backup.id, false],
        [B, false],
        [C, false],
        [D, true],
      ]);
      for (const id of [B, C])
        expect(await readVerifyRecord(store, backupVerifyKey(CLUSTER, id))).toMatchObject({
          ok: false,
        });
      // A member's WAL is not the increment's: B's own segment missing fails B only.
      store.corrupt(backup.objects[0]?.key ?? "", Buffer.from(`bundle ${backup.id} 0 `.repeat(20)));
      await store.delete(walKeys.get(seg(4)) ?? "");
      const gap = await verify(store);
      expect(gap.backups.map((b) => [b.id, b.ok, b.restorable])).toEqual([
        [backup.id, true, true],
        [B, false, false],
        [C, true, true],
        [D, true, true],
      ]);
    });

    it("a member that failed by its own WAL only fails nothing built on it, in a later --since run too", async () => {
      store.corrupt(backup.objects[0]?.key ?? "", Buffer.from(`bundle ${backup.id} 0 `.repeat(20)));
      await store.delete(walKeys.get(seg(4)) ?? ""); // B's own WAL
      await verify(store);
      expect(await readVerifyRecord(store, backupVerifyKey(CLUSTER, B))).toMatchObject({
        ok: false,
        restorable: false,
        dataOk: true,
      });
      const D = "20261122T100000Z"; // an increment of C, ended after --since
      await putBackup(store, D, 6, 6, 1, {
        ...incr(C, [backup.id, B, C]),
        startTime: "2026-11-22T10:00:00Z",
        stopTime: "2026-11-22T10:05:00Z",
      });
      const report = await verify(store, { since: Date.parse("2026-11-22T00:00:00Z") });
      expect(report.backups.map((b) => [b.id, b.ok, b.failedChain])).toEqual([[D, true, []]]);
      expect(report.findings.map((f) => [f.kind, f.backup])).not.toContainEqual([
        "unrestorable",
        D,
      ]);
      expect(await readVerifyRecord(store, backupVerifyKey(CLUSTER, D))).toMatchObject({
        ok: true,
        dataOk: true,
      });
    });
  });

  it("leaves out a backup and a dump set a prune deleted while verify ran, and still names real damage", async () => {
    /** Deletes a backup or dump set as prune does (manifest first) just before verify lists it. */
    class PruneDuringVerify extends MemoryStore {
      readonly victims = new Set<string>();
      override async *list(prefix: string, options?: ListOptions): AsyncIterable<ListEntry> {
        if (this.victims.delete(prefix)) {
          const keys: string[] = [];
          for await (const entry of super.list(prefix)) keys.push(entry.key);
          keys.sort(
            (a, b) => Number(b.endsWith("/manifest.json")) - Number(a.endsWith("/manifest.json")),
          );
          for (const key of keys) await this.delete(key);
        }
        yield* super.list(prefix, options);
      }
    }
    const pruning = new PruneDuringVerify();
    const old = await putBackup(pruning, "20261121T100000Z", 2, 3);
    const kept = await putBackup(pruning, "20261121T120000Z", 5, 6);
    for (let n = 2; n <= 8; n++) await putWal(pruning, seg(n));
    await putDumpSet(pruning, "20261121T110000Z");
    const damaged = kept.objects[1]?.key ?? "";
    await pruning.delete(damaged);
    pruning.victims.add(backupPrefix(CLUSTER, old.id));
    pruning.victims.add(dumpPrefix(CLUSTER, "20261121T110000Z"));
    const report = await verify(pruning);
    expect(report.findings.map((f) => [f.kind, f.object])).toEqual([["missing", damaged]]);
    expect(report.backups.map((b) => b.id)).toEqual([kept.id]);
    expect(report.dumpSets).toEqual([]);
    // No verify record is left behind beside the deleted manifests.
    expect(await pruning.head(backupVerifyKey(CLUSTER, old.id))).toBeUndefined();
    expect(await pruning.head(dumpVerifyKey(CLUSTER, "20261121T110000Z"))).toBeUndefined();
  });

  it("leaves out WAL a prune deleted meanwhile from before the oldest backup left, not WAL in the window", async () => {
    /** At verify's first WAL read, a prune deletes the old backup and the WAL before the kept one. */
    class PruneAtWalRead extends MemoryStore {
      prune: (() => Promise<void>) | undefined;
      override async get(key: string) {
        const prune = this.prune;
        if (prune && key.startsWith(walPrefix(CLUSTER))) {
          this.prune = undefined;
          await prune();
        }
        return super.get(key);
      }
    }
    const pruning = new PruneAtWalRead();
    const old = await putBackup(pruning, "20261121T100000Z", 2, 3);
    await putBackup(pruning, "20261121T120000Z", 5, 6);
    const keys = new Map<number, string>();
    for (let n = 2; n <= 8; n++) keys.set(n, await putWal(pruning, seg(n)));
    pruning.prune = async () => {
      await pruning.delete(backupManifestKey(CLUSTER, old.id));
      for (const object of old.objects) await pruning.delete(object.key);
      for (const n of [2, 3, 4]) await pruning.delete(keys.get(n) ?? "");
      // Not what a prune does: WAL the kept backup's window needs, gone too.
      await pruning.delete(keys.get(7) ?? "");
    };
    const report = await verifyRepository(
      {
        store: pruning,
        cluster: CLUSTER,
        log: memoryLogger(),
        now: () => new Date("2026-12-01T19:00:00Z"),
        random: () => 0,
        jobs: 1,
      },
      ALL,
    );
    expect(report.findings.map((f) => [f.kind, f.object])).toEqual([["missing", seg(7)]]);
    expect(report.findings[0]?.message).toMatch(/was listed but is gone/);
    expect(
      await pruning.head(backupVerifyKey(CLUSTER, old.id)),
      "no verify record is left beside a manifest deleted while verify ran",
    ).toBeUndefined();
  });

  it("refuses a cluster the repository does not hold", async () => {
    await expect(
      verifyRepository(
        {
          store,
          cluster: "mian",
          log: memoryLogger(),
          now: () => new Date(),
          random: Math.random,
          jobs: 1,
        },
        ALL,
      ),
    ).rejects.toThrow(/holds no cluster 'mian'/);
  });
});
