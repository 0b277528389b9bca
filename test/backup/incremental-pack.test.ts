/**
 * An incremental bundle against its parent's manifest, without PostgreSQL: which files
 * are stored whole, as blocks or not at all, and that the parent's bytes plus the delta
 * entries rebuild every file exactly (the manifest's size and sha256).
 */
import { createHash } from "node:crypto";
import { type FileHandle, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BLOCK_HASH_BYTES, blockHash, decodeBlockMap } from "../../src/backup/block-map.js";
import { BLOCK_SIZE, DeltaDecoder } from "../../src/backup/delta-entry.js";
import { packBundle } from "../../src/backup/pack-bundle.js";
import {
  packChangedBlocks,
  SAMPLE_BLOCKS,
  SAMPLED_FROM_BLOCKS,
  sampleBlocks,
  sampleSeed,
  storesWhole,
} from "../../src/backup/pack-changed-blocks.js";
import { indexParentFiles } from "../../src/backup/parent-files.js";
import { Spool } from "../../src/backup/spool.js";
import type { WalkEntry } from "../../src/backup/walk.js";
import type { BackupFileEntry, BlockMap } from "../../src/repository/backup-manifest.js";
import { dirEntry as dir, fileEntry as file, makeBackupManifest } from "../helpers/builders.js";

const none = { algorithm: "none" } as const;

/** Packs `entries` of `root` uncompressed: the manifest entries and each tar entry's bytes. */
async function pack(
  root: string,
  entries: WalkEntry[],
  extra: Partial<Parameters<typeof packBundle>[0]> = {},
) {
  const chunks: Buffer[] = [];
  const packed = await packBundle(
    { part: "base", root, entries, compression: none, zstdThreads: 0, ...extra },
    { output: async (chunk) => void chunks.push(chunk), progress: () => undefined },
  );
  const stored = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      if (entry.header.type === "file") stored.set(entry.header.name, Buffer.concat(parts));
    }
  })();
  extract.end(Buffer.concat(chunks));
  await done;
  return { files: packed.files, stored, rawSize: packed.rawSize };
}

/** A file's bytes from its parent's copy and a delta entry, as a restore assembles them. */
function assemble(parent: Buffer, delta: Buffer): Buffer {
  let out = Buffer.alloc(0);
  const decoder = new DeltaDecoder(delta.length, {
    head: (head) => {
      out = Buffer.alloc(head.fileSize);
      parent.copy(out, 0, 0, Math.min(parent.length, head.fileSize));
    },
    data: (_block, offset, bytes) => out.set(bytes, offset),
  });
  decoder.write(delta);
  decoder.end();
  return out;
}

const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

function blocksOf(count: number, seed: number, tail = 0): Buffer {
  const out = Buffer.alloc(count * BLOCK_SIZE + tail);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + seed * 13 + (i >> 13)) & 0xff;
  return out;
}

describe("incremental bundles", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "pgha-incr-"));
    await mkdir(join(root, "base", "5"), { recursive: true });
    await mkdir(join(root, "global"), { recursive: true });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const write = (path: string, bytes: Buffer) => writeFile(join(root, path), bytes);
  const entriesOf = (files: Record<string, Buffer>): WalkEntry[] => [
    dir("base"),
    dir("base/5"),
    dir("global"),
    ...Object.entries(files)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([path, bytes]) => file(path, bytes.length)),
  ];

  it("stores changed, grown and new blocks, keeps a shrunk file's size, skips what did not change", async () => {
    const before: Record<string, Buffer> = {
      "base/5/1000": blocksOf(4, 1), // unchanged
      "base/5/1001": blocksOf(4, 2), // block 2 changed
      "base/5/1002": blocksOf(3, 3, 100), // grows: its short last block fills, and two more
      "base/5/1003": blocksOf(5, 4), // shrinks to 2 blocks and a short one
      "base/5/1004": blocksOf(2, 5), // deleted
      "base/5/1005_fsm": blocksOf(1, 6, 10), // last short block changes
      "base/5/1006.1": blocksOf(3, 10), // shrinks to 2 blocks, none of them changed
      "base/5/1007": blocksOf(200, 11), // all blocks but the first change: more than the spool's memory
      "global/1262": blocksOf(1, 7), // unchanged, in global
      "base/5/PG_VERSION": Buffer.from("15\n"), // compared whole, unchanged
      "base/5/pg_filenode.map": Buffer.alloc(512, 1), // compared whole, changed
      "postgresql.conf": Buffer.alloc(3 << 20, 2), // compared whole, bigger than the spool's memory, unchanged
      "pg_hba.conf": Buffer.from("local all all trust\n"), // grows: stored whole
    };
    for (const [path, bytes] of Object.entries(before)) await write(path, bytes);
    const full = await pack(root, entriesOf(before));
    for (const f of full.files) {
      if (f.path.startsWith("base/5/1") || f.path.startsWith("global/")) {
        expect(f.stored, f.path).toBeUndefined(); // a full holds every file whole
        const map = decodeBlockMap(f, 1);
        expect(
          [...map.from].every((i) => i === 0),
          f.path,
        ).toBe(true);
      } else expect(f.blocks, f.path).toBeUndefined();
    }
    const parent = makeBackupManifest({ id: "20261201T000000Z", files: full.files });

    const after: Record<string, Buffer> = { ...before };
    delete after["base/5/1004"];
    after["base/5/1001"] = Buffer.from(before["base/5/1001"] as Buffer);
    (after["base/5/1001"] as Buffer).fill(9, 2 * BLOCK_SIZE + 5, 2 * BLOCK_SIZE + 6);
    after["base/5/1002"] = Buffer.concat([
      before["base/5/1002"] as Buffer,
      blocksOf(1, 8, BLOCK_SIZE - 100 + BLOCK_SIZE),
    ]);
    after["base/5/1003"] = (before["base/5/1003"] as Buffer).subarray(0, 2 * BLOCK_SIZE + 300);
    after["base/5/1005_fsm"] = Buffer.from(before["base/5/1005_fsm"] as Buffer);
    (after["base/5/1005_fsm"] as Buffer)[BLOCK_SIZE + 3] = 0xee;
    after["base/5/1006.1"] = (before["base/5/1006.1"] as Buffer).subarray(0, 2 * BLOCK_SIZE);
    after["base/5/1007"] = Buffer.concat([
      (before["base/5/1007"] as Buffer).subarray(0, BLOCK_SIZE),
      blocksOf(199, 12),
    ]);
    after["base/5/2000"] = blocksOf(2, 9); // new
    after["base/5/pg_filenode.map"] = Buffer.alloc(512, 3);
    after["pg_hba.conf"] = Buffer.from("local all all trust\nhost all all ::1/128 trust\n");
    for (const [path, bytes] of Object.entries(after)) await write(path, bytes);
    await rm(join(root, "base/5/1004"));

    const entries = entriesOf(after);
    // Below --backup-incr-whole's share (100: only a file all of whose blocks changed).
    const incr = await pack(root, entries, {
      chainIndex: 1,
      parents: indexParentFiles(parent)("base", entries),
      wholePercent: 100,
    });
    const byPath = new Map(incr.files.map((f) => [f.path, f]));
    const storedAs = (path: string) => byPath.get(path)?.stored ?? "whole";
    expect(Object.fromEntries(incr.files.map((f) => [f.path, storedAs(f.path)]))).toEqual({
      "base/5/1000": "none",
      "base/5/1001": "blocks",
      "base/5/1002": "blocks",
      "base/5/1003": "blocks",
      "base/5/1005_fsm": "blocks",
      "base/5/1006.1": "blocks",
      "base/5/1007": "blocks",
      "base/5/2000": "whole",
      "base/5/PG_VERSION": "none",
      "base/5/pg_filenode.map": "whole",
      "global/1262": "none",
      "pg_hba.conf": "whole",
      "postgresql.conf": "none",
    });
    expect(byPath.has("base/5/1004")).toBe(false);
    expect(byPath.get("base/5/PG_VERSION")?.from).toBe(parent.id);
    expect(byPath.get("postgresql.conf")?.from).toBe(parent.id);
    // Nothing of an unchanged file is in the bundle.
    for (const path of ["base/5/1000", "global/1262", "base/5/PG_VERSION", "postgresql.conf"])
      expect(incr.stored.has(path), path).toBe(false);

    const changedBlocks = (path: string) => {
      const map = decodeBlockMap(byPath.get(path) as BackupFileEntry, 2);
      return [...map.from].flatMap((from, block) => (from === 1 ? [block] : []));
    };
    expect(changedBlocks("base/5/1000")).toEqual([]);
    expect(changedBlocks("base/5/1001")).toEqual([2]);
    expect(changedBlocks("base/5/1002")).toEqual([3, 4, 5]);
    expect(changedBlocks("base/5/1003")).toEqual([2]); // the new short last block
    expect(changedBlocks("base/5/1005_fsm")).toEqual([1]);
    expect(changedBlocks("base/5/2000")).toEqual([0, 1]);
    // A delta entry holds exactly the changed blocks.
    expect((incr.stored.get("base/5/1001") as Buffer).length).toBe(24 + 4 + BLOCK_SIZE);
    expect((incr.stored.get("base/5/1003") as Buffer).length).toBe(24 + 4 + 300);
    expect(changedBlocks("base/5/1006.1")).toEqual([]);
    expect(changedBlocks("base/5/1007")).toHaveLength(199);
    expect((incr.stored.get("base/5/1006.1") as Buffer).length).toBe(24); // only the new size

    for (const f of incr.files) {
      const now = after[f.path] as Buffer;
      expect(f.size, f.path).toBe(now.length);
      expect(f.sha256, f.path).toBe(sha(now));
      const map = f.blocks ? decodeBlockMap(f, 2) : undefined;
      if (map)
        expect(map.hashes.length).toBe(Math.ceil(now.length / BLOCK_SIZE) * BLOCK_HASH_BYTES);
      const held = storedAs(f.path);
      if (held === "blocks") {
        const rebuilt = assemble(before[f.path] as Buffer, incr.stored.get(f.path) as Buffer);
        expect(rebuilt.equals(now), f.path).toBe(true);
      } else if (held === "whole") expect(incr.stored.get(f.path)?.equals(now), f.path).toBe(true);
    }
    // The incremental bundle is a small part of the full one.
    expect(incr.rawSize - 200 * BLOCK_SIZE).toBeLessThan((full.rawSize - 200 * BLOCK_SIZE) / 4);

    // A second increment: blocks unchanged since the first keep naming the backup that holds them.
    const second = makeBackupManifest({
      id: "20261202T000000Z",
      files: incr.files,
      type: "incr",
      chain: [parent.id],
    });
    const again = await pack(root, entries, {
      chainIndex: 2,
      parents: indexParentFiles(second)("base", entries),
      wholePercent: 100,
    });
    const secondBy = new Map(again.files.map((f) => [f.path, f]));
    for (const f of again.files) expect(f.stored, f.path).toBe("none");
    expect([...decodeBlockMap(secondBy.get("base/5/1002") as BackupFileEntry, 3).from]).toEqual([
      0, 0, 0, 1, 1, 1,
    ]);
    expect(secondBy.get("pg_hba.conf")?.from).toBe(second.id);
    expect(secondBy.get("base/5/PG_VERSION")?.from).toBe(parent.id); // never a chain walk at restore
    expect(again.stored.size).toBe(0);
  });

  it("a file stored whole for its share of changed blocks records it; the next increment stores it whole in one read while a sample says the share holds", async () => {
    const before = { "base/5/1000": blocksOf(4, 1), "base/5/1001": blocksOf(4, 2) };
    for (const [path, bytes] of Object.entries(before)) await write(path, bytes);
    const entries = entriesOf(before);
    const full = await pack(root, entries);
    const parent = makeBackupManifest({ id: "20261201T000000Z", files: full.files });
    // 3 of 4 blocks of 1000 change, 1 of 4 of 1001.
    const after = {
      "base/5/1000": Buffer.concat([before["base/5/1000"].subarray(0, BLOCK_SIZE), blocksOf(3, 7)]),
      "base/5/1001": Buffer.concat([blocksOf(1, 8), before["base/5/1001"].subarray(BLOCK_SIZE)]),
    };
    for (const [path, bytes] of Object.entries(after)) await write(path, bytes);
    const incr = await pack(root, entries, {
      chainIndex: 1,
      parents: indexParentFiles(parent)("base", entries),
      wholePercent: 50,
    });
    const first = new Map(incr.files.map((f) => [f.path, f]));
    expect(first.get("base/5/1000")).toMatchObject({ stored: "whole", changed: 3 });
    expect(first.get("base/5/1001")?.stored).toBe("blocks");
    expect(first.get("base/5/1001")?.changed).toBeUndefined();
    expect(incr.stored.get("base/5/1000")?.equals(after["base/5/1000"])).toBe(true);

    const second = makeBackupManifest({
      id: "20261202T000000Z",
      files: incr.files,
      type: "incr",
      chain: [parent.id],
    });
    const next = (bytes: Buffer, mtimeStep: number) => {
      const touched = entries.map((e) =>
        e.path === "base/5/1000" ? { ...e, mtime: new Date(e.mtime.getTime() + mtimeStep) } : e,
      );
      return write("base/5/1000", bytes).then(() =>
        pack(root, touched, {
          chainIndex: 2,
          parents: indexParentFiles(second)("base", touched),
          wholePercent: 50,
        }),
      );
    };
    const entryOf = (packed: { files: BackupFileEntry[] }) =>
      packed.files.find((f) => f.path === "base/5/1000") as BackupFileEntry;
    const oneChanged = Buffer.concat([blocksOf(1, 9), after["base/5/1000"].subarray(BLOCK_SIZE)]);
    // Its time still the parent's copy's: the delta path (which finds the one block).
    expect(entryOf(await next(oneChanged, 0)).stored).toBe("blocks");
    // Its time moved, but a sample finds 1 block of 4 changed: no longer hot, a delta.
    const cooled = entryOf(await next(oneChanged, 1000));
    expect(cooled.stored).toBe("blocks");
    expect([...decodeBlockMap(cooled, 3).from]).toEqual([2, 1, 1, 1]);
    // Half of its blocks changed again: hot, read once and stored whole, counted anew.
    const twoChanged = Buffer.concat([
      blocksOf(2, 10),
      after["base/5/1000"].subarray(2 * BLOCK_SIZE),
    ]);
    const again = await next(twoChanged, 2000);
    const hot = entryOf(again);
    expect(hot).toMatchObject({ stored: "whole", changed: 2, sha256: sha(twoChanged) });
    expect([...decodeBlockMap(hot, 3).from]).toEqual([2, 2, 2, 2]);
    expect(again.stored.get("base/5/1000")?.equals(twoChanged)).toBe(true);
    expect(again.files.find((f) => f.path === "base/5/1001")?.stored).toBe("none");
  });

  it("a hot file is stored whole on its sample's word: a quarter changed, but half of the sampled blocks", async () => {
    const blocks = 2 * SAMPLE_BLOCKS; // the sample reads every other block
    const before = blocksOf(blocks, 1);
    await write("base/5/1000", before);
    const entries = entriesOf({ "base/5/1000": before });
    const full = await pack(root, entries);
    // The parent's copy: stored whole with all of its blocks changed.
    const parentEntry = {
      ...(full.files[0] as BackupFileEntry),
      stored: "whole" as const,
      changed: blocks,
    };
    const parent = makeBackupManifest({
      id: "20261202T000000Z",
      files: [parentEntry],
      type: "incr",
      chain: ["F"],
    });
    // Half of the sampled blocks change, and a quarter of the file: the sample's word.
    const sampled = sampleBlocks(blocks, sampleSeed("base/5/1000"));
    const changedBlocks = new Set(sampled.filter((_, i) => i % 2 === 0));
    for (let b = 0; changedBlocks.size < blocks / 4; b++)
      if (!sampled.includes(b)) changedBlocks.add(b);
    const now = Buffer.from(before);
    for (const b of changedBlocks)
      now.writeUInt8(now.readUInt8(b * BLOCK_SIZE) ^ 1, b * BLOCK_SIZE);
    await write("base/5/1000", now);
    const touched = entries.map((e) => ({ ...e, mtime: new Date(e.mtime.getTime() + 1000) }));
    const incr = await pack(root, touched, {
      chainIndex: 2,
      parents: indexParentFiles(parent)("base", touched),
      wholePercent: 50,
    });
    // The delta path would have stored 128 blocks; the hot path stored the file, once.
    expect(incr.files[0]).toMatchObject({ stored: "whole", changed: blocks / 4, sha256: sha(now) });
    expect(incr.stored.get("base/5/1000")?.equals(now)).toBe(true);
  });

  it("a large file of a full's is sampled too: stored whole in one read on the sample's word, once its time moved", async () => {
    const blocks = SAMPLED_FROM_BLOCKS; // the sample reads every 4th block
    const before = blocksOf(blocks, 1);
    await write("base/5/1000", before);
    const entries = entriesOf({ "base/5/1000": before });
    const full = await pack(root, entries);
    const parent = makeBackupManifest({ id: "20261201T000000Z", files: full.files });
    expect(full.files[0]?.changed).toBeUndefined();
    // The sampled blocks change (one in each 4): 25% of the file, every block of the sample.
    const now = Buffer.from(before);
    for (const b of sampleBlocks(blocks, sampleSeed("base/5/1000")))
      now.writeUInt8(now.readUInt8(b * BLOCK_SIZE) ^ 1, b * BLOCK_SIZE);
    await write("base/5/1000", now);
    const incr = async (mtimeStep: number) => {
      const touched = entries.map((e) => ({
        ...e,
        mtime: new Date(e.mtime.getTime() + mtimeStep),
      }));
      return pack(root, touched, {
        chainIndex: 1,
        parents: indexParentFiles(parent)("base", touched),
        wholePercent: 50,
      });
    };
    // Its time still the full's copy's: the delta path, a quarter of the blocks.
    expect((await incr(0)).files[0]).toMatchObject({ stored: "blocks" });
    const sampled = await incr(1000);
    expect(sampled.files[0]).toMatchObject({
      stored: "whole",
      changed: blocks / 4,
      sha256: sha(now),
    });
    expect(sampled.stored.get("base/5/1000")?.equals(now)).toBe(true);
  });

  it("a periodic pattern of changes does not meet the sample, and --backup-incr-whole 100 never samples", async () => {
    const blocks = 4096;
    const before = blocksOf(blocks, 1);
    await write("base/5/1000", before);
    const entries = entriesOf({ "base/5/1000": before });
    const parent = makeBackupManifest({
      id: "20261201T000000Z",
      files: (await pack(root, entries)).files,
    });
    const incr = async (bytes: Buffer, wholePercent: number) => {
      await write("base/5/1000", bytes);
      const touched = entries.map((e) => ({ ...e, mtime: new Date(e.mtime.getTime() + 1000) }));
      return (
        await pack(root, touched, {
          chainIndex: 1,
          parents: indexParentFiles(parent)("base", touched),
          wholePercent,
        })
      ).files[0];
    };
    // Every 16th block (the sample's stratum size): 1/16 of the file.
    const periodic = Buffer.from(before);
    for (let b = 0; b < blocks; b += 16)
      periodic.writeUInt8(periodic.readUInt8(b * BLOCK_SIZE) ^ 1, b * BLOCK_SIZE);
    expect(await incr(periodic, 50)).toMatchObject({ stored: "blocks" });
    // Every block but one changed: whole at 99 (the sample), a delta at 100.
    const allButOne = Buffer.from(before);
    for (let b = 1; b < blocks; b++)
      allButOne.writeUInt8(allButOne.readUInt8(b * BLOCK_SIZE) ^ 1, b * BLOCK_SIZE);
    expect(await incr(allButOne, 99)).toMatchObject({ stored: "whole", changed: blocks - 1 });
    expect(await incr(allButOne, 100)).toMatchObject({ stored: "blocks" });
    expect(sampleBlocks(blocks, 7)).toEqual(sampleBlocks(blocks, 7));
    expect(sampleBlocks(100, 7)).toEqual([...Array(100).keys()]);
  });

  it("a relation file the parent has without a map is stored whole", async () => {
    const bytes = blocksOf(2, 1);
    await write("base/5/1000", bytes);
    const entries = entriesOf({ "base/5/1000": bytes });
    const parent = makeBackupManifest({
      files: [
        {
          part: "base",
          path: "base/5/1000",
          size: bytes.length,
          mode: 0o600,
          mtime: "",
          sha256: sha(bytes),
        },
      ],
    });
    const incr = await pack(root, entries, {
      chainIndex: 1,
      parents: indexParentFiles(parent)("base", entries),
    });
    expect(incr.files[0]?.stored).toBeUndefined();
    expect(incr.stored.get("base/5/1000")?.equals(bytes)).toBe(true);
    expect([...decodeBlockMap(incr.files[0] as BackupFileEntry, 2).from]).toEqual([1, 1]);
  });
});

describe("a relation file that changes while it is read", () => {
  /** The parent's entry of `parentBytes`, packed as a full would. */
  const parentEntry = async (parentBytes: Buffer): Promise<BackupFileEntry> => {
    const root = await mkdtemp(join(tmpdir(), "pgha-incr-"));
    try {
      await mkdir(join(root, "base", "5"), { recursive: true });
      await writeFile(join(root, "base/5/1"), parentBytes);
      return (await pack(root, [file("base/5/1", parentBytes.length)])).files[0] as BackupFileEntry;
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  };

  /**
   * packChangedBlocks over a file whose content is `versions[n]` from its (n+1)th read
   * from the start on (the last one after that): how many reads from the start, the
   * result, and the delta entry's bytes.
   */
  const packVersions = async (
    parentBytes: Buffer,
    versions: Buffer[],
    options: {
      wholePercent?: number;
      nextVersionAt?: (position: number) => boolean;
      /** The size the walk saw (default: the last version's). */
      walkedSize?: number;
      /** The spool's memory (default: its own). */
      spoolBytes?: number;
    } = {},
  ) => {
    const full = await parentEntry(parentBytes);
    let reads = 0;
    const startsRead = options.nextVersionAt ?? ((position: number) => position === 0);
    const handle = {
      read: async (buffer: Buffer, offset: number, length: number, position: number) => {
        if (startsRead(position)) reads++;
        const source = versions[Math.min(reads, versions.length) - 1] as Buffer;
        const n = source.copy(buffer, offset, position, Math.min(position + length, source.length));
        return { bytesRead: n, buffer };
      },
    } as unknown as FileHandle;
    const out: Buffer[] = [];
    const spool = new Spool(options.spoolBytes);
    let progressed = 0;
    const size = options.walkedSize ?? (versions.at(-1) as Buffer).length;
    const packed = await packChangedBlocks(
      {
        entry: file("base/5/1", size),
        absPath: "base/5/1",
        mapped: true,
        chainIndex: 1,
        parent: {
          size: full.size,
          sha256: full.sha256,
          holder: "P",
          blocks: full.blocks as BlockMap,
        },
      },
      full.blocks as BlockMap,
      handle,
      [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)],
      {
        put: (bytes) => void out.push(Buffer.from(bytes)),
        flush: async () => undefined,
        progress: (n) => {
          progressed += n;
        },
      },
      spool,
      options.wholePercent ?? 100,
    );
    await spool.close();
    const tarBytes = Buffer.concat(out);
    const entrySize =
      tarBytes.length > 0 ? Number.parseInt(tarBytes.toString("latin1", 124, 135), 8) : 0;
    return { reads, packed, entry: tarBytes.subarray(512, 512 + entrySize), full, progressed };
  };

  it("is read again, blocks and sha256 together, when the second read sees other blocks", async () => {
    const parentBytes = blocksOf(3, 1);
    const first = Buffer.from(parentBytes);
    first[2 * BLOCK_SIZE] = 0xaa; // block 2 changed since the parent
    const later = Buffer.from(first);
    later[0] = 0xbb; // and block 0 while the backup reads it
    const { reads, packed, entry } = await packVersions(parentBytes, [first, later]);
    expect(reads).toBe(3); // blocks; blocks 0-1 again for the file hash, block 0 changed; blocks and file again
    expect(packed.stored).toBe("blocks");
    expect(packed.sha256).toBe(sha(later));
    expect(entry.length).toBe(24 + 8 + 2 * BLOCK_SIZE);
    expect(assemble(parentBytes, entry).equals(later)).toBe(true);
  });

  it("is read once when its first block changed, and its sha256 is that of the bytes stored", async () => {
    const parentBytes = blocksOf(3, 1);
    const first = Buffer.from(parentBytes);
    first[5] = 0xaa;
    const later = Buffer.from(first);
    later[2 * BLOCK_SIZE] = 0xbb; // a change the one read did not see
    const { reads, packed, entry } = await packVersions(parentBytes, [first, later]);
    expect(reads).toBe(1);
    expect(packed.sha256).toBe(sha(first));
    expect(entry.length).toBe(24 + 4 + BLOCK_SIZE);
    expect(assemble(parentBytes, entry).equals(first)).toBe(true);
  });

  it("reads only the blocks before the first change again, and takes the rest from the first read", async () => {
    const parentBytes = blocksOf(300, 1); // more than one read buffer
    const first = Buffer.from(parentBytes);
    first[200 * BLOCK_SIZE + 7] = 0xaa;
    first[250 * BLOCK_SIZE + 7] = 0xab;
    const later = Buffer.from(first);
    later[299 * BLOCK_SIZE] = 0xbb; // past the blocks read again: the first read's bytes count
    const { reads, packed, entry } = await packVersions(parentBytes, [first, later]);
    expect(reads).toBe(2);
    expect(packed.stored).toBe("blocks");
    expect(packed.sha256).toBe(sha(first));
    expect(entry.length).toBe(24 + 8 + 2 * BLOCK_SIZE);
    expect(assemble(parentBytes, entry).equals(first)).toBe(true);
    const entryOf = { part: "base", path: "base/5/1", size: first.length, mode: 0o600, mtime: "" };
    const map = decodeBlockMap({ ...entryOf, ...packed }, 2);
    expect([...map.from].flatMap((from, block) => (from === 1 ? [block] : []))).toEqual([200, 250]);
  });

  it("is read once and not stored when no block changed", async () => {
    const parentBytes = blocksOf(3, 1);
    const { reads, packed, entry, full } = await packVersions(parentBytes, [parentBytes]);
    expect(reads).toBe(1);
    expect(packed.stored).toBe("none");
    expect(packed.sha256).toBe(full.sha256);
    expect(entry.length).toBe(0);
  });

  /** Block `b`'s 16-byte hash in a packed entry's map. */
  const hashOf = (packed: { sha256: string; blocks?: BlockMap }, size: number, b: number) => {
    const entryOf = { part: "base", path: "base/5/1", size, mode: 0o600, mtime: "" };
    return decodeBlockMap({ ...entryOf, ...packed }, 2).hashes.subarray(
      b * BLOCK_HASH_BYTES,
      (b + 1) * BLOCK_HASH_BYTES,
    );
  };

  it("is stored whole from --backup-incr-whole's share of changed blocks on: the read stops there, and the file is read again and stored as a full stores it", async () => {
    const parentBytes = blocksOf(4, 1);
    const first = Buffer.from(parentBytes);
    for (const b of [1, 3]) first[b * BLOCK_SIZE + 9] = 0xaa; // 2 of 4 blocks: 50%
    const { reads, packed, entry, progressed } = await packVersions(parentBytes, [first], {
      wholePercent: 50,
    });
    expect(progressed).toBe(first.length); // each byte once, though read twice
    expect(reads).toBe(3); // the read (up to the 2nd change); block 0 again (before the first change, for the sha256); the whole file
    expect(packed.stored).toBe("whole");
    expect(entry.equals(first)).toBe(true);
    expect(packed.sha256).toBe(sha(first));
    const entryOf = { part: "base", path: "base/5/1", size: first.length, mode: 0o600, mtime: "" };
    const map = decodeBlockMap({ ...entryOf, ...packed }, 2);
    expect([...map.from]).toEqual([1, 1, 1, 1]); // every block is this backup's
    for (let b = 0; b < 4; b++)
      expect(
        hashOf(packed, first.length, b).equals(
          blockHash(first.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)),
        ),
      ).toBe(true);
    // Below the share: a delta entry, as before.
    const below = await packVersions(parentBytes, [first], { wholePercent: 51 });
    expect(below.packed.stored).toBe("blocks");
    expect(assemble(parentBytes, below.entry).equals(first)).toBe(true);
  });

  it("is stored whole, its changed count that of the read that stored it, with a short last block and a spool that spilled", async () => {
    const parentBytes = blocksOf(6, 1, 100); // 7 blocks, the last of 100 bytes
    const first = Buffer.from(parentBytes);
    for (const b of [0, 1, 2, 3, 4, 6])
      first.writeUInt8(first.readUInt8(b * BLOCK_SIZE + 50) ^ 0x5a, b * BLOCK_SIZE + 50);
    const { packed, entry } = await packVersions(parentBytes, [first], {
      wholePercent: 50,
      spoolBytes: 2 * BLOCK_SIZE + 100, // not a whole number of blocks: spills mid-block
    });
    expect(packed).toMatchObject({ stored: "whole", changed: 6, sha256: sha(first) });
    expect(entry.equals(first)).toBe(true);
    for (let b = 0; b < 7; b++)
      expect(
        hashOf(packed, first.length, b).equals(
          blockHash(first.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)),
        ),
        `block ${b}`,
      ).toBe(true);
  });

  it("stores a block that changed after the first read as the read that stores it sees it, under its hash, with the sha256 of the bytes stored", async () => {
    const parentBytes = blocksOf(4, 1);
    const first = Buffer.from(parentBytes);
    for (const b of [0, 1, 2]) first[b * BLOCK_SIZE + 3] = 0xaa;
    const later = Buffer.from(first);
    later[3 * BLOCK_SIZE + 100] = 0xbb; // block 3: the first read stops before it; it changes before the second
    const { packed, entry, reads } = await packVersions(parentBytes, [first, later], {
      wholePercent: 50,
    });
    expect(reads).toBe(2);
    expect(packed.changed).toBe(4);
    expect(packed.stored).toBe("whole");
    expect(entry.equals(later)).toBe(true);
    expect(packed.sha256).toBe(sha(later));
    expect(hashOf(packed, later.length, 3).equals(blockHash(later.subarray(3 * BLOCK_SIZE)))).toBe(
      true,
    );
  });

  it("stores zeros where the file shrank before it is read again to be stored whole", async () => {
    const parentBytes = blocksOf(4, 1, 100);
    const first = Buffer.from(parentBytes);
    for (const b of [0, 1, 2]) first[b * BLOCK_SIZE + 3] = 0xaa;
    const cut = first.subarray(0, 3 * BLOCK_SIZE); // PostgreSQL truncated it meanwhile
    const { packed, entry } = await packVersions(parentBytes, [first, cut], {
      wholePercent: 50,
      walkedSize: first.length,
    });
    const stored = Buffer.concat([cut, Buffer.alloc(first.length - cut.length)]);
    expect(packed.stored).toBe("whole");
    expect(entry.equals(stored)).toBe(true); // the size the walk saw, as every read does
    expect(packed.sha256).toBe(sha(stored));
  });

  it("goes whole after a read the file moved under, and tells each byte's progress once", async () => {
    const parentBytes = blocksOf(4, 1);
    const first = Buffer.from(parentBytes);
    for (const b of [1, 2]) first[b * BLOCK_SIZE + 3] = 0xaa;
    const later = Buffer.from(first);
    later[7] = 0xbb; // block 0, while block 1's prefix is read again for the file's hash
    const { packed, entry, reads, progressed } = await packVersions(parentBytes, [first, later], {
      wholePercent: 50,
    });
    // The read; block 0 again (moved); a read hashing as it goes (stops at 2 changed); whole.
    expect(reads).toBe(4);
    expect(packed).toMatchObject({ stored: "whole", changed: 3, sha256: sha(later) });
    expect(entry.equals(later)).toBe(true);
    expect(progressed).toBe(later.length);
  });

  it("storesWhole: a share of the blocks, never a file with no changed block", () => {
    expect(storesWhole(0, 4 * BLOCK_SIZE, 1)).toBe(false);
    expect(storesWhole(0, 0, 1)).toBe(false);
    expect(storesWhole(2, 4 * BLOCK_SIZE, 50)).toBe(true);
    expect(storesWhole(1, 4 * BLOCK_SIZE, 50)).toBe(false);
    expect(storesWhole(4, 4 * BLOCK_SIZE, 100)).toBe(true); // every block: whole by default too
    expect(storesWhole(3, 4 * BLOCK_SIZE, 100)).toBe(false);
    expect(storesWhole(1, BLOCK_SIZE + 1, 50)).toBe(true); // a short last block counts as a block
  });
});
