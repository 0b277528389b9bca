/**
 * Restoring incremental backups from hand-made chains (issue 14, point 2) and restore
 * --delta into an existing directory (point 4), through fetchBaseBackup and its jobs.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { filesOf } from "../../src/backup/chain-manifest.js";
import { planDelta } from "../../src/backup/delta-plan.js";
import { scanTargets } from "../../src/backup/delta-scan.js";
import { type FetchBackupDeps, fetchBaseBackup } from "../../src/backup/fetch-backup.js";
import { RESTORE_MARKER } from "../../src/backup/pg-control-last.js";
import { IntegrityError, StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { type BackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { refuseForeignTarget } from "../../src/restore/delta-target.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { fakeClockPolicy } from "../helpers/breaking-store.js";
import {
  BLOCK,
  encodeDeltaEntry,
  type Snapshot,
  storeChain,
  threeSnapshots,
} from "../helpers/chain-builder.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";
import { treeDigest } from "../helpers/tree-digest.js";

const temp = freshDirPerTest("pgha-chain-");

async function writeSnapshot(dir: string, snapshot: Snapshot): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const d of snapshot.dirs ?? []) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
  for (const [path, data] of Object.entries(snapshot.files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, path), data, { mode: 0o600 });
  }
}

/** `store`, whose GETs of backup objects (`cut(key)` says which) break off after 100 bytes. */
function cuttingDataObjects(store: MemoryStore, cut: (key: string) => boolean): MemoryStore {
  return Object.assign(Object.create(store) as MemoryStore, {
    get: async (key: string) => {
      const got = await store.get(key);
      if (!key.includes("/data/") || !cut(key)) return got;
      async function* broken() {
        for await (const chunk of got.body) {
          yield (chunk as Buffer).subarray(0, 100);
          break;
        }
        throw Object.assign(new Error("aborted"), { code: "ECONNRESET" });
      }
      return { info: got.info, body: Readable.from(broken()) };
    },
  });
}

function fetchWith(
  store: MemoryStore,
  members: BackupManifest[],
  at: number,
  out: string,
  more: Partial<FetchBackupDeps> = {},
) {
  return fetchBaseBackup(
    {
      store,
      log: memoryLogger(),
      progress: () => undefined,
      jobs: 2,
      chain: members.slice(0, at),
      ...more,
    },
    members[at] as BackupManifest,
    out,
    new Map(),
  );
}

async function deltaDeps(members: BackupManifest[], at: number, out: string) {
  const files = filesOf(members[at] as BackupManifest);
  const plan = planDelta(files, await scanTargets([{ part: "base", root: out }], files, 2));
  return { plan, deps: { keep: plan.keep, reuse: plan.reuse } };
}

// Each fetch starts job workers: seconds on a loaded machine.
describe("restoring a chain", { timeout: 30_000 }, () => {
  it("gives every backup of the chain exactly the files it was taken from", async () => {
    const store = new MemoryStore();
    const snapshots = threeSnapshots();
    const members = await storeChain(store, snapshots);
    for (const at of [0, 1, 2]) {
      const expected = join(temp.path, `expected-${at}`);
      await writeSnapshot(expected, snapshots[at] as Snapshot);
      const out = join(temp.path, `out-${at}`);
      await fetchWith(store, members, at, out);
      expect(await treeDigest(out)).toEqual(await treeDigest(expected));
    }
  });

  it("fails on a block that does not match its hash, and empties the target", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    // The last increment's object, with one byte of a stored block changed.
    const object = members[2]?.objects[0];
    if (!object) throw new Error("no object");
    const { body } = await store.get(object.key);
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    const data = Buffer.concat([1, 22, 23].map((fill) => Buffer.alloc(BLOCK, fill)));
    const delta = encodeDeltaEntry(data, [1, 2]);
    const at = bytes.indexOf(delta.subarray(0, 32));
    expect(at).toBeGreaterThan(0);
    // base/1/100's block 1 in its delta entry
    bytes.writeUInt8((bytes.readUInt8(at + 24 + 8 + 100) ^ 1) & 0xff, at + 24 + 8 + 100);
    await store.put(object.key, bytes);
    object.storedSha256 = createHash("sha256").update(bytes).digest("hex");
    const out = join(temp.path, "out");
    const fetched = fetchWith(store, members, 2, out);
    await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
    await expect(fetched).rejects.toThrow(/block 1 does not match its manifest hash/);
    await expect(fetched).rejects.toMatchObject({
      hint: expect.stringMatching(/pgha verify --backup 20261123T000000Z/),
    });
    expect(await treeDigest(out)).toEqual({});
  });

  it("refuses a chain member whose manifest is not of the chain", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const other = { ...(members[1] as BackupManifest), systemIdentifier: "2" };
    const fetched = fetchWith(
      store,
      [members[0] as BackupManifest, other, members[2] as BackupManifest],
      2,
      join(temp.path, "out"),
    );
    await expect(fetched).rejects.toThrow(/needs backup 20261122T000000Z of its chain/);
  });

  it("refuses a chain member that is not the backup the plan saw (other start or stop)", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    // Read from the store this time, as a restore reads them.
    for (const m of members.slice(0, 2)) await writeBackupManifest(store, m);
    const planned = members.slice(0, 2).map((m) => ({ ...m, files: [] }));
    const ok = join(temp.path, "ok");
    await fetchWith(store, members, 2, ok, { chain: undefined, plannedChain: planned });
    const moved = [
      planned[0] as BackupManifest,
      { ...(planned[1] as BackupManifest), stopLsn: "9/0" },
    ];
    const fetched = fetchWith(store, members, 2, join(temp.path, "out"), {
      chain: undefined,
      plannedChain: moved,
    });
    await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
    await expect(fetched).rejects.toThrow(/20261122T000000Z changed while the restore was planned/);
  });
});

describe("restore --delta", { timeout: 30_000 }, () => {
  it("hashes a file in pieces of whole blocks to the same block hashes as in one piece", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const out = join(temp.path, "out");
    await fetchWith(store, members, 2, out);
    const files = filesOf(members[2] as BackupManifest);
    const parts = [{ part: "base", root: out }];
    const whole = await scanTargets(parts, files, 2);
    const pieces = await scanTargets(parts, files, 2, BLOCK);
    expect([...whole.values()].some((f) => (f.blockHashes?.length ?? 0) > 16)).toBe(true);
    expect(pieces).toEqual(whole);
  });

  it("turns a directory one increment old into the clean restore, writing only what differs", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const clean = join(temp.path, "clean");
    await fetchWith(store, members, 2, clean);
    const out = join(temp.path, "out");
    await fetchWith(store, members, 1, out);
    // What a server leaves: WAL, a pid file, a stray directory and link, changed modes.
    await writeFile(join(out, "pg_wal", "000000010000000000000001"), "wal");
    await writeFile(join(out, "postmaster.pid"), "999999999\n");
    await mkdir(join(out, "base", "9", "deep"), { recursive: true });
    await writeFile(join(out, "base", "9", "deep", "x"), "x");
    await symlink("/tmp", join(out, "pg_stat_tmp"));
    await mkdir(join(out, "PG_VERSION.d"));
    // Types the backup does not have there: a file where it has a directory, and the reverse.
    await rm(join(out, "pg_wal", "archive_status"), { recursive: true });
    await writeFile(join(out, "pg_wal", "archive_status"), "not a directory");
    await rm(join(out, "postgresql.conf"));
    await mkdir(join(out, "postgresql.conf", "sub"), { recursive: true });
    const pgVersion = await stat(join(out, "PG_VERSION"));
    const { plan, deps } = await deltaDeps(members, 2, out);
    // PG_VERSION; global/pg_control is the same but always written (last).
    expect(plan.kept).toBe(1);
    expect([...(plan.reuse.get("base/base/1/100") ?? [])]).toEqual([0]);
    await fetchWith(store, members, 2, out, deps);
    expect(await treeDigest(out)).toEqual(await treeDigest(clean));
    // Kept: not written again.
    expect((await stat(join(out, "PG_VERSION"))).mtimeMs).toBe(pgVersion.mtimeMs);
    expect(await readFile(join(out, "base", "1", "200"))).toEqual(Buffer.alloc(BLOCK, 4));
  });

  it("also goes back: a newer directory restored --delta to the full", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const clean = join(temp.path, "clean");
    await fetchWith(store, members, 0, clean);
    const out = join(temp.path, "out");
    await fetchWith(store, members, 2, out);
    const { deps } = await deltaDeps(members, 0, out);
    await fetchWith(store, members, 0, out, deps);
    expect(await treeDigest(out)).toEqual(await treeDigest(clean));
  });

  it("a --delta into a directory it cannot make says nothing was removed from it", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const file = join(temp.path, "a-file");
    await writeFile(file, "not a directory");
    const out = join(file, "nope"); // mkdir fails (ENOTDIR), as under a parent it may not write
    const failed = await fetchWith(store, members, 1, out, {
      keep: new Set(),
      reuse: new Map(),
    }).catch((e: Error) => e);
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toContain(out);
    expect((failed as Error).message).not.toContain("restore --delta stopped");
    expect(await readFile(file, "utf8")).toBe("not a directory");
  });

  it("a restore the storage fails keeps what it wrote (resumable), and --delta finishes it", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const broken = cuttingDataObjects(store, () => true);
    for (const at of [0, 2]) {
      const clean = join(temp.path, `clean-${at}`);
      await fetchWith(store, members, at, clean);
      const out = join(temp.path, `out-${at}`);
      const failed = await fetchWith(broken, members, at, out, { resumable: true }).catch(
        (e: unknown) => e,
      );
      expect(failed).toBeInstanceOf(StorageError);
      expect((failed as StorageError).hint).toMatch(/with --delta to finish it/);
      expect(existsSync(join(out, RESTORE_MARKER))).toBe(true);
      expect(existsSync(join(out, "global", "pg_control"))).toBe(false);
      const { deps } = await deltaDeps(members, at, out);
      await fetchWith(store, members, at, out, deps);
      expect(await treeDigest(out)).toEqual(await treeDigest(clean));
      // Without it (backup fetch, drill), the target is emptied as before.
      const plain = join(temp.path, `plain-${at}`);
      await expect(fetchWith(broken, members, at, plain)).rejects.toThrow(/aborted/);
      expect(await readdir(plain)).toEqual([]);
    }
  });

  it("a download that breaks off goes on where it broke (with retries), and the restore completes", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    // Each data object's first GET breaks off after 100 bytes.
    const broke = new Set<string>();
    const breaking = cuttingDataObjects(store, (key) => {
      if (broke.has(key)) return false;
      broke.add(key);
      return true;
    });
    const retried = addRetries(breaking, fakeClockPolicy(5_000));
    for (const at of [0, 2]) {
      broke.clear();
      const clean = join(temp.path, `clean-${at}`);
      await fetchWith(store, members, at, clean);
      const out = join(temp.path, `out-${at}`);
      await fetchWith(retried as MemoryStore, members, at, out);
      expect(broke.size).toBeGreaterThan(0);
      expect(await treeDigest(out)).toEqual(await treeDigest(clean));
    }
  });

  it("reads only the objects that hold what it writes, besides the target's own", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const out = join(temp.path, "out");
    await fetchWith(store, members, 2, out);
    await writeFile(join(out, "PG_VERSION"), "16\n");
    const read: string[] = [];
    const get = store.get.bind(store);
    store.get = (key, ...rest) => {
      read.push(key);
      return get(key, ...rest);
    };
    const { plan, deps } = await deltaDeps(members, 2, out);
    // PG_VERSION, and global/pg_control (always written, last).
    expect(plan.rewritten).toBe(2);
    await fetchWith(store, members, 2, out, deps);
    // PG_VERSION is held whole by the full, in its first object, and global/pg_control
    // (always written) in its second; the increment's objects make the directory tree.
    const keys = (at: number) => members[at]?.objects.map((o) => o.key) ?? [];
    expect(read.sort()).toEqual([keys(0)[0], keys(0)[1], ...keys(2)].sort());
    expect(await readFile(join(out, "PG_VERSION"), "utf8")).toBe("15\n");
  });
});

/** Bytes that do not compress, the same for the same seed. */
function noise(seed: string, length: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < length; i++)
    out.push(createHash("sha256").update(`${seed}/${i}`).digest());
  return Buffer.concat(out).subarray(0, length);
}

/** 64 blocks of noise; then each change gives its blocks (by number) other noise. */
function relation(...changes: [blocks: number[], seed: string][]): Buffer {
  const data = Buffer.alloc(64 * BLOCK);
  for (let k = 0; k < 64; k++) noise(`block ${k}`, BLOCK).copy(data, k * BLOCK);
  for (const [blocks, seed] of changes)
    for (const k of blocks) noise(`${seed} ${k}`, BLOCK).copy(data, k * BLOCK);
  return data;
}

describe("restoring a chain stored as zstd frames", { timeout: 30_000 }, () => {
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const snapshots = (): Snapshot[] => {
    const base = { PG_VERSION: Buffer.from("15\n"), "global/pg_control": Buffer.alloc(100, 9) };
    return [
      { files: { ...base, "base/1/100": relation() } },
      // The first increment replaces the first half of the full's blocks...
      { files: { ...base, "base/1/100": relation([range(0, 32), "a"]) } },
      // ... and the second all but two of its own, and one more of the full's.
      {
        files: {
          ...base,
          "base/1/100": relation([range(0, 32), "a"], [[...range(0, 30), 40], "b"]),
        },
      },
    ];
  };

  it("restores every backup exactly, passing over the frames nothing is needed from", async () => {
    const store = new MemoryStore();
    const snaps = snapshots();
    const members = await storeChain(store, snaps, { frames: BLOCK });
    expect(members[0]?.objects.some((o) => (o.frames?.sizes.length ?? 0) > 40)).toBe(true);
    const passed: number[] = [];
    for (const at of [0, 1, 2]) {
      const expected = join(temp.path, `expected-${at}`);
      await writeSnapshot(expected, snaps[at] as Snapshot);
      const out = join(temp.path, `out-${at}`);
      const result = await fetchWith(store, members, at, out);
      expect(await treeDigest(out)).toEqual(await treeDigest(expected));
      passed.push(result.passedOver ?? 0);
    }
    // A full restore (no chain) reads every frame; a chain passes over the blocks that
    // newer backups replaced (a frame of one block's size spans two blocks): for the last
    // one, 33 blocks of the full's and 30 of the first increment's.
    expect(passed[0]).toBe(0);
    expect(passed[1]).toBeGreaterThanOrEqual(30 * BLOCK);
    expect(passed[2]).toBeGreaterThanOrEqual(58 * BLOCK);
  });

  it("restores --delta over an older directory, passing over the frames of blocks it has right", async () => {
    const store = new MemoryStore();
    const snaps = snapshots();
    const members = await storeChain(store, snaps, { frames: BLOCK });
    const clean = join(temp.path, "clean");
    await fetchWith(store, members, 2, clean);
    const out = join(temp.path, "out");
    await fetchWith(store, members, 0, out);
    const { plan, deps } = await deltaDeps(members, 2, out);
    // The full's blocks the target has are already right: its object is not even read;
    // of the first increment's 32 blocks two are needed, the frames of the rest are not
    // decompressed.
    expect([...(plan.reuse.get("base/base/1/100") ?? [])]).toHaveLength(31);
    const result = await fetchWith(store, members, 2, out, deps);
    expect(await treeDigest(out)).toEqual(await treeDigest(clean));
    expect(result.passedOver ?? 0).toBeGreaterThanOrEqual(28 * BLOCK);
  });

  it("gives a file the target backup's mode, whichever backup holds its bytes", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, snapshots(), { frames: BLOCK });
    // The last backup saw the file with another mode than the backups holding its blocks
    // (their tar entries say 0600).
    const target = members[2] as BackupManifest;
    const file = target.files.find((f) => f.path === "base/1/100");
    if (!file) throw new Error("no base/1/100");
    file.mode = 0o640;
    const out = join(temp.path, "out");
    await fetchWith(store, members, 2, out);
    const umask = process.umask();
    expect((await stat(join(out, "base", "1", "100"))).mode & 0o777).toBe(0o640 & ~umask);
    expect((await stat(join(out, "PG_VERSION"))).mode & 0o777).toBe(0o600 & ~umask);
  });

  it("fails as corrupt when the frame index does not match the object, and empties the target", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, snapshots(), { frames: BLOCK });
    // The full's big object with 100 bytes of a frame that holds needed blocks (near the
    // end) counted in the next one: the total still matches.
    const object = members[0]?.objects.find((o) => (o.frames?.sizes.length ?? 0) > 40);
    if (!object?.frames) throw new Error("no framed object");
    const sizes = Buffer.from(object.frames.sizes, "base64");
    const at = sizes.length - 4 * 4;
    sizes.writeUInt32LE(sizes.readUInt32LE(at) - 100, at);
    sizes.writeUInt32LE(sizes.readUInt32LE(at + 4) + 100, at + 4);
    object.frames.sizes = sizes.toString("base64");
    const out = join(temp.path, "out");
    const fetched = fetchWith(store, members, 2, out);
    await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
    await expect(fetched).rejects.toThrow(/is corrupt: cannot decompress/);
    expect(await treeDigest(out)).toEqual({});
  });
});

describe("pg_control, written last", { timeout: 30_000 }, () => {
  /** Whether `path` exists under `out` each time an object is asked for. */
  function watch(store: MemoryStore, out: string, path = "global/pg_control"): boolean[] {
    const seen: boolean[] = [];
    const get = store.get.bind(store);
    store.get = (key, ...rest) => {
      seen.push(existsSync(join(out, path)));
      return get(key, ...rest);
    };
    return seen;
  }

  it("is not in the target while a restore writes the other files", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const out = join(temp.path, "out");
    const seen = watch(store, out);
    await fetchWith(store, members, 2, out);
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((there) => !there)).toBe(true);
    expect(await readFile(join(out, "global", "pg_control"))).toEqual(Buffer.alloc(100, 9));
    expect(existsSync(join(out, "global", "pg_control.pgha-restoring"))).toBe(false);
  });

  it("a restore stopped part way (marker, some files, no pg_control) is finished by --delta", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const clean = join(temp.path, "clean");
    await fetchWith(store, members, 2, clean);
    const out = join(temp.path, "out");
    const markers = watch(store, out, ".pgha-restore-incomplete");
    await fetchWith(store, members, 2, out);
    // While it wrote, the marker was there; once done, it is not.
    expect(markers.length).toBeGreaterThan(0);
    expect(markers.every((there) => there)).toBe(true);
    expect(existsSync(join(out, ".pgha-restore-incomplete"))).toBe(false);
    // What a kill -9 part way leaves: the marker, files half there, no pg_control, no PG_VERSION.
    await writeFile(join(out, ".pgha-restore-incomplete"), JSON.stringify({ backup: "x" }));
    await rm(join(out, "global", "pg_control"));
    await rm(join(out, "PG_VERSION"));
    await writeFile(join(out, "base", "1", "100"), "half");
    await writeFile(join(out, "global", "pg_control.pgha-restoring"), "half");
    // A restore into it refuses, and says how to finish it.
    const plain = fetchWith(store, members, 2, out);
    await expect(plain).rejects.toThrow(/is not empty/);
    await expect(plain).rejects.toMatchObject({
      hint: expect.stringMatching(
        /did not finish: empty it and run the command again \(pgha restore --delta/,
      ),
    });
    await refuseForeignTarget(out, members[2] as BackupManifest);
    const { deps } = await deltaDeps(members, 2, out);
    await fetchWith(store, members, 2, out, deps);
    expect(await treeDigest(out)).toEqual(await treeDigest(clean));
  });

  it("restore --delta removes the target's before it changes anything", async () => {
    const store = new MemoryStore();
    const members = await storeChain(store, threeSnapshots());
    const out = join(temp.path, "out");
    await fetchWith(store, members, 1, out);
    const { deps } = await deltaDeps(members, 2, out);
    const seen = watch(store, out);
    await fetchWith(store, members, 2, out, deps);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((there) => !there)).toBe(true);
    expect(await readFile(join(out, "global", "pg_control"))).toEqual(Buffer.alloc(100, 9));
  });
});
