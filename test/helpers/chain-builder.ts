/**
 * Hand-made chains of backups for unit tests, written as FORMAT.md's "Incremental backups"
 * says (block maps, delta entries), independently of the backup side: a full, then
 * increments that store the blocks (or whole files) that changed since their parent.
 * Files under base/ and global/ are block-mapped; others are compared whole.
 */
import { createHash } from "node:crypto";
import { type ChainFileEntry, fileKey } from "../../src/backup/chain-manifest.js";
import { END_OF_ARCHIVE, encodeTarHeader, padding } from "../../src/backup/tar-header.js";
import { FramedCompressor, type FrameIndex } from "../../src/compress/frames.js";
import { SyncCompressor } from "../../src/compress/zstd-sync.js";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { backupDataKey } from "../../src/repository/keys.js";
import type { MemoryStore } from "../../src/storage/memory.js";
import { makeBackupManifest } from "./builders.js";

export const BLOCK = 8192;

/** A data directory's files (path -> content) and its directories beside their parents. */
export interface Snapshot {
  files: Record<string, Buffer>;
  dirs?: string[];
}

const mtime = new Date("2026-11-21T12:00:00Z");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const blockHash = (b: Uint8Array) => createHash("sha256").update(b).digest().subarray(0, 16);

export function isBlockMapped(path: string): boolean {
  return path.startsWith("base/") || path.startsWith("global/");
}

function blocksOf(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += BLOCK) out.push(data.subarray(at, at + BLOCK));
  return out;
}

/** A delta entry (FORMAT.md) holding `numbers` of `data`. */
export function encodeDeltaEntry(data: Buffer, numbers: number[]): Buffer {
  const header = Buffer.alloc(24);
  header.write("PGHADLT1", 0, "latin1");
  header.writeUInt32LE(BLOCK, 8);
  header.writeUInt32LE(numbers.length, 12);
  header.writeBigUInt64LE(BigInt(data.length), 16);
  const list = Buffer.alloc(numbers.length * 4);
  numbers.forEach((n, i) => {
    list.writeUInt32LE(n, i * 4);
  });
  return Buffer.concat([
    header,
    list,
    ...numbers.map((n) => data.subarray(n * BLOCK, (n + 1) * BLOCK)),
  ]);
}

export const chainId = (i: number) => `202611${String(21 + i).padStart(2, "0")}T000000Z`;

/** A tar stream compressed as zstd frames of `raw` bytes (compress/frames.ts). */
async function framed(body: Buffer, raw: number): Promise<{ stored: Buffer; frames: FrameIndex }> {
  const zstd = await SyncCompressor.create({ level: 1, threads: 0 });
  const compressor = new FramedCompressor(zstd, raw);
  const out: Buffer[] = [];
  const emit = (chunk: Buffer) => {
    out.push(Buffer.from(chunk));
  };
  compressor.write(body, emit);
  compressor.end(emit);
  return { stored: Buffer.concat(out), frames: compressor.index() };
}

/**
 * Stores one backup per snapshot, each the increment of the one before; uncompressed, or
 * with `frames` compressed as zstd frames of that many bytes of tar stream.
 */
export async function storeChain(
  store: MemoryStore,
  snapshots: Snapshot[],
  options: { frames?: number } = {},
): Promise<BackupManifest[]> {
  const manifests: BackupManifest[] = [];
  for (const [i, snapshot] of snapshots.entries()) {
    const id = chainId(i);
    const parent = manifests.at(-1);
    const previous = new Map((parent?.files ?? []).map((f) => [fileKey(f), f]));
    const tar: Buffer[] = [];
    const dirs = new Set(snapshot.dirs ?? []);
    for (const path of Object.keys(snapshot.files)) {
      const steps = path.split("/");
      for (let n = 1; n < steps.length; n++) dirs.add(steps.slice(0, n).join("/"));
    }
    for (const dir of [...dirs].sort())
      tar.push(encodeTarHeader({ name: dir, type: "directory", size: 0, mode: 0o700, mtime }));
    const files: ChainFileEntry[] = [];
    // Two objects: the directories and the first half of the files, then the rest.
    const half = Math.ceil(Object.keys(snapshot.files).length / 2);
    const tars: Buffer[][] = [tar, []];
    let current = tar;
    const entry = (path: string, body: Buffer) => {
      current.push(
        encodeTarHeader({ name: path, type: "file", size: body.length, mode: 0o600, mtime }),
      );
      current.push(body, Buffer.alloc(padding(body.length)));
    };
    for (const [path, data] of Object.entries(snapshot.files).sort()) {
      if (files.length === half) current = tars[1] as Buffer[];
      const own: ChainFileEntry = {
        part: "base",
        path,
        size: data.length,
        mode: 0o600,
        mtime: mtime.toISOString(),
        sha256: sha(data),
      };
      const before = previous.get(`base/${path}`);
      if (isBlockMapped(path)) {
        const blocks = blocksOf(data);
        const hashes = Buffer.concat(blocks.map(blockHash));
        const from = Buffer.alloc(blocks.length, i);
        const oldHashes = before?.blocks ? Buffer.from(before.blocks.hashes, "base64") : undefined;
        const oldFrom = before?.blocks ? Buffer.from(before.blocks.from, "base64") : undefined;
        const changed: number[] = [];
        blocks.forEach((_, k) => {
          const same =
            oldHashes &&
            k * 16 < oldHashes.length &&
            oldHashes.subarray(k * 16, k * 16 + 16).equals(hashes.subarray(k * 16, k * 16 + 16));
          if (same && oldFrom) from[k] = oldFrom[k] as number;
          else changed.push(k);
        });
        own.blocks = {
          size: BLOCK,
          hashes: hashes.toString("base64"),
          from: from.toString("base64"),
        };
        if (!before) entry(path, data);
        else if (changed.length === 0) own.stored = "none";
        else {
          own.stored = "blocks";
          entry(path, encodeDeltaEntry(data, changed));
        }
      } else if (before && before.sha256 === own.sha256 && before.size === own.size) {
        own.stored = "none";
        own.from = before.stored === "none" ? before.from : parent?.id;
      } else entry(path, data);
      files.push(own);
    }
    const objects: BackupManifest["objects"] = [];
    for (const [index, parts] of tars.entries()) {
      const body = Buffer.concat([...parts, END_OF_ARCHIVE]);
      const key = backupDataKey("main", id, "base", index);
      const fileCount = index === 0 ? half : files.length - half;
      if (options.frames) {
        const { stored, frames } = await framed(body, options.frames);
        await store.put(key, stored);
        objects.push({
          part: "base",
          key,
          compression: "zstd",
          rawSize: body.length,
          storedSize: stored.length,
          storedSha256: sha(stored),
          files: fileCount,
          frames,
        });
        continue;
      }
      await store.put(key, body);
      objects.push({
        part: "base",
        key,
        compression: "none",
        rawSize: body.length,
        storedSize: body.length,
        storedSha256: sha(body),
        files: fileCount,
      });
    }
    const chain = parent ? [...(parent.chain ?? []), parent.id] : [];
    const manifest = {
      ...makeBackupManifest({ id }),
      format: parent ? 2 : 1,
      type: parent ? "incr" : "full",
      parent: parent?.id ?? null,
      chain,
      rawBytes: objects.reduce((n, o) => n + o.rawSize, 0),
      storedBytes: objects.reduce((n, o) => n + o.storedSize, 0),
      objects,
      files,
    } as BackupManifest;
    manifests.push(manifest);
  }
  return manifests;
}

const block = (fill: number, size = BLOCK) => Buffer.alloc(size, fill);

/** A full, then incr 1, then incr 2: every kind of change between them. */
export function threeSnapshots(): Snapshot[] {
  const s0: Snapshot = {
    files: {
      PG_VERSION: Buffer.from("15\n"),
      "postgresql.conf": Buffer.from("port = 5432\n"),
      "global/pg_control": block(9, 100),
      "base/1/100": Buffer.concat([block(1), block(2), block(3)]),
      "base/1/200": Buffer.concat([block(4), block(5)]),
    },
    dirs: ["pg_wal", "pg_wal/archive_status"],
  };
  const s1: Snapshot = {
    ...s0,
    files: {
      ...s0.files,
      "base/1/100": Buffer.concat([block(1), block(12), block(3)]),
      "base/1/200": Buffer.concat([block(4), block(5), block(6, 100)]),
      "base/1/300": block(7),
    },
  };
  const { "base/1/300": _dropped, ...kept } = s1.files;
  const s2: Snapshot = {
    ...s0,
    files: {
      ...kept,
      "postgresql.conf": Buffer.from("port = 5433\n"),
      "base/1/100": Buffer.concat([block(1), block(22), block(23)]),
      "base/1/200": block(4),
      "base/1/400": Buffer.alloc(0),
    },
  };
  return [s0, s1, s2];
}
