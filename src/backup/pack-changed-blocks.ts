/**
 * packChangedBlocks: a relation file of an incremental backup that the parent mapped,
 * stored as a delta entry (delta-entry.ts) of the blocks whose hash differs from the
 * parent's (or that lie past the parent's size), or not at all when none do. A file that
 * shrank keeps only the blocks of its new size (the entry says the size). Every block's
 * content is compared, never its LSN or the file's mtime (FORMAT.md says why).
 *
 * The file is read once in the common case. The changed blocks are kept in a Spool while
 * it is read (the delta entry's tar header needs their count), so the stored blocks are
 * the hashed blocks, whatever the file does meanwhile.
 *
 * The file's sha256 (the manifest's, of the file as restored) is taken from the same
 * read. A file of the parent's size is most often unchanged, so only its blocks are
 * hashed until one differs from the parent's: then the blocks before it (all the
 * parent's) are read again into the file's hash, which goes on with the first read's
 * bytes. If no block differs, the file is the parent's and so is its sha256. If the blocks
 * read again are not the ones first read (the file changes under the backup), the file is
 * read once more, hashing blocks and file together from the start, as a file of another
 * size is at once.
 *
 * A file of which at least `wholePercent` of the blocks changed is stored whole instead
 * (PostgreSQL 17's incremental backups do so when more than 90% changed): its delta would
 * save little, and every restore of a later backup would assemble the file from the older
 * backups' copies of it, reading and decompressing what they hold only to pass most of it
 * over. As soon as so many blocks changed (whatever the rest does), the read stops and the
 * file is read again and stored whole, as a full stores it (packHotFile): its sha256 and
 * block hashes are of exactly the bytes stored. The manifest records how many blocks
 * changed (`changed`): when the parent's copy says so many changed, the next increment
 * reads the file that way at once; once fewer change, it is back to a delta. A large file
 * whose parent says nothing of it (a full) is sampled first (isHot, stillHot), so the
 * first increment after a full, and every differential, need not read it twice either.
 */
import { createHash, type Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { BLOCK_HASH_BYTES, blockHash } from "./block-map.js";
import { BlockMapper, sameBlockHash } from "./block-mapper.js";
import { BLOCK_SIZE, blockCount, deltaEntrySize, encodeDeltaHead } from "./delta-entry.js";
import {
  type FileToPack,
  type PackedFile,
  type ParentFile,
  packWhole,
  putTarHeader,
  putTarPadding,
  type TarSink,
} from "./pack-file.js";
import { readPrefix, readWalkedSize } from "./read-walked-size.js";
import type { Spool } from "./spool.js";

/** Largest read of the blocks read again (smaller prefixes get a buffer of their size). */
const PREFIX_READ_BYTES = 1 << 20;

export async function packChangedBlocks(
  file: FileToPack,
  parentMap: { hashes: string; from: string },
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
  spool: Spool,
  wholePercent: number,
): Promise<PackedFile> {
  const { entry } = file;
  const parent = {
    hashes: Buffer.from(parentMap.hashes, "base64"),
    from: Buffer.from(parentMap.from, "base64"),
  };
  if (parent.hashes.length !== parent.from.length * BLOCK_HASH_BYTES)
    return packWhole(file, handle, buffers, tar); // not a map this pgha wrote: store it whole
  const sameSize = entry.size === file.parent?.size;
  const whole = wholeFrom(entry.size, wholePercent);
  let read: ReadBlocks;
  // Bytes of the file progress was told of (by whichever read got furthest).
  const told = { tar, bytes: 0 };
  try {
    read =
      (await readChangedBlocks(file, parent, handle, buffers, spool, sameSize, whole, told)) ??
      ((await readChangedBlocks(
        file,
        parent,
        handle,
        buffers,
        spool,
        false,
        whole,
        told,
      )) as ReadBlocks);
  } catch (error) {
    if (!(error instanceof GoesWhole)) throw error;
    spool.clear();
    return packHotFile(file, parentMap, handle, buffers, tar, told.bytes);
  }
  if (read.changed.length === 0 && sameSize && file.parent) {
    spool.clear();
    return { sha256: file.parent.sha256, stored: "none", blocks: read.blocks };
  }
  const head = {
    blockSize: BLOCK_SIZE,
    fileSize: entry.size,
    blocks: Uint32Array.from(read.changed),
  };
  const size = deltaEntrySize(head);
  putTarHeader(tar, entry, size);
  tar.put(encodeDeltaHead(head));
  await spool.drain(buffers[0], async (bytes) => {
    tar.put(bytes);
    await tar.flush();
  });
  putTarPadding(tar, size);
  return { sha256: read.sha256 as string, stored: "blocks", blocks: read.blocks };
}

interface ReadBlocks {
  /** Blocks that differ from the parent's, ascending; their bytes are in the spool. */
  changed: number[];
  /** The file's sha256; undefined when the hash was put off and no block changed. */
  sha256: string | undefined;
  blocks: ReturnType<BlockMapper["end"]>;
}

/** How many changed blocks of a file of `size` bytes make it stored whole (at least one). */
function wholeFrom(size: number, wholePercent: number): number {
  return Math.max(1, Math.ceil((wholePercent * blockCount(size)) / 100));
}

/** Whether a file of `size` bytes of which `changed` blocks changed is stored whole. */
export function storesWhole(changed: number, size: number, wholePercent: number): boolean {
  return changed >= wholeFrom(size, wholePercent);
}

/**
 * Whether a file may be stored whole at once, if a sample says it changed that much
 * (stillHot). Only when its modification time moved since the parent's copy (else most
 * likely it did not change: a table rewritten once, then left alone; the delta path,
 * which compares every block whatever the time says, stores nothing of it), and either
 * the parent's copy changed at least the share (it was stored whole: `changed`), or the
 * parent says nothing of that (a full, or a differential's full) and the file is large
 * enough (SAMPLED_FROM_BLOCKS) that a sample costs little beside the read it may save.
 */
export function isHot(
  parent: ParentFile | undefined,
  wholePercent: number,
  mtime: string,
  size: number,
): boolean {
  // 100: only a file all of whose blocks changed, which no sample can promise.
  if (wholePercent >= 100 || parent?.mtime === undefined || parent.mtime === mtime) return false;
  if (parent.changed !== undefined) return storesWhole(parent.changed, parent.size, wholePercent);
  return blockCount(size) >= SAMPLED_FROM_BLOCKS;
}

/** Blocks a sample of a hot file reads (sampleBlocks). */
export const SAMPLE_BLOCKS = 256;

/**
 * A file whose parent's copy says nothing of how much changed is sampled from this many
 * blocks on (8 MiB: the sample reads at most a quarter of it; a 1 GiB segment, 0.2%).
 */
export const SAMPLED_FROM_BLOCKS = 4 * SAMPLE_BLOCKS;

/**
 * The blocks a sample of a file of `blocks` blocks reads: one in each of SAMPLE_BLOCKS equal
 * strata, at an offset drawn from `seed` (sampleSeed of the file's path), ascending. Not
 * evenly spaced: a table whose changes fall on every 16th block (a periodic pattern, a
 * fillfactor) would otherwise meet a sample of the same period and look fully changed.
 */
export function sampleBlocks(blocks: number, seed: number): number[] {
  const n = Math.min(blocks, SAMPLE_BLOCKS);
  let state = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const start = Math.floor((k * blocks) / n);
    const end = Math.floor(((k + 1) * blocks) / n);
    out.push(start + (next() % (end - start)));
  }
  return out;
}

/** The seed of a file's sample: FNV-1a of its path (the same blocks every backup). */
export function sampleSeed(path: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    hash ^= path.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Whether a sample of the file's blocks (sampleBlocks: SAMPLE_BLOCKS of them, 2 MiB at
 * most) differs from the parent's in at least --backup-incr-whole's share. A table
 * rewritten once and written to a little since has moved its time but is no longer hot:
 * the delta path stores its few blocks (and still goes whole once the share is certain).
 * The sample only chooses between two ways that both store every byte read; it may be
 * wrong (a file a little under the share, or changes that happen to meet the sample), and
 * then a file is stored whole that the delta path would have stored as blocks.
 */
export async function stillHot(
  size: number,
  parentMap: { hashes: string },
  handle: FileHandle,
  buffer: Buffer,
  wholePercent: number,
  /** The file's path: its sample's seed (sampleSeed). */
  path: string,
): Promise<boolean> {
  const blocks = blockCount(size);
  if (blocks === 0) return false;
  const parentHashes = Buffer.from(parentMap.hashes, "base64");
  const sample = sampleBlocks(blocks, sampleSeed(path));
  let changed = 0;
  for (const block of sample) {
    const length = Math.min(BLOCK_SIZE, size - block * BLOCK_SIZE);
    const { bytesRead } = await handle.read(buffer, 0, length, block * BLOCK_SIZE);
    // Short (the file shrank since the walk): as a read would see it, zeros; count it changed.
    if (
      bytesRead < length ||
      !sameBlockHash(blockHash(buffer.subarray(0, length)), parentHashes, block)
    )
      changed++;
  }
  return changed * 100 >= wholePercent * sample.length;
}

/**
 * A relation file whose parent's copy changed at least --backup-incr-whole's share: read
 * once and stored whole, as a full stores it, counting the blocks that differ from the
 * parent's (or lie past its size) for the next increment.
 */
export async function packHotFile(
  file: FileToPack,
  parentMap: { hashes: string },
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
  /** Bytes of the file a read before this one already told progress of. */
  counted = 0,
): Promise<PackedFile> {
  const parentHashes = Buffer.from(parentMap.hashes, "base64");
  let changed = 0;
  const decide = (block: number, _bytes: Uint8Array, digest: Buffer) => {
    if (!sameBlockHash(digest, parentHashes, block)) changed++;
    return file.chainIndex;
  };
  const packed = await packWhole(file, handle, buffers, tar, decide, counted);
  return { ...packed, stored: "whole", changed };
}

/** Thrown inside a read whose blocks read again were not the ones first read. */
class FileMoved extends Error {}

/** Thrown inside a read once so many blocks changed that the file is stored whole. */
class GoesWhole extends Error {}

/**
 * One read of the file: its map, its changed blocks (into the spool) and its sha256, or
 * undefined when `putOffHash` and the file changed under the read (read it again without).
 * Progress is told of the bytes read past those an earlier read told of (`told`). Throws
 * GoesWhole once `whole` blocks changed (wholeFrom), before anything more is read or kept for it.
 */
async function readChangedBlocks(
  file: FileToPack,
  parent: { hashes: Buffer; from: Uint8Array },
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  spool: Spool,
  putOffHash: boolean,
  whole: number,
  told: { tar: TarSink; bytes: number },
): Promise<ReadBlocks | undefined> {
  const { entry, chainIndex } = file;
  spool.clear();
  const changed: number[] = [];
  let hash: Hash | undefined = putOffHash ? undefined : createHash("sha256");
  const map = new BlockMapper(entry.size, chainIndex, (block, bytes, digest) => {
    if (sameBlockHash(digest, parent.hashes, block)) {
      hash?.update(bytes);
      return parent.from[block] as number;
    }
    return keepChanged(block, bytes);
  });
  const keepChanged = async (block: number, bytes: Uint8Array): Promise<number> => {
    if (changed.length + 1 >= whole) throw new GoesWhole();
    if (!hash) {
      // The first changed block: the file's hash takes the blocks before it from a new read.
      hash = createHash("sha256");
      if (!(await hashPrefix(block * BLOCK_SIZE, handle, map.hashes, hash))) throw new FileMoved();
    }
    hash.update(bytes);
    changed.push(block);
    await spool.append(bytes);
    return chainIndex;
  };
  let read = 0;
  try {
    await readWalkedSize(entry.size, handle, buffers, async (chunk) => {
      await map.write(chunk);
      read += chunk.length;
      if (read > told.bytes) {
        told.tar.progress(read - told.bytes);
        told.bytes = read;
      }
    });
  } catch (error) {
    if (error instanceof FileMoved) return undefined;
    throw error;
  }
  const sha256 = (hash as Hash | undefined)?.digest("hex");
  return { changed, sha256, blocks: map.end() };
}

/**
 * Reads bytes 0..length again into `hash`: whether every block reads as `first` (the
 * first read's block hashes) saw it. (Exported for its test.)
 */
export async function hashPrefix(
  length: number,
  handle: FileHandle,
  first: Buffer,
  hash: Hash,
): Promise<boolean> {
  if (length === 0) return true;
  let same = true;
  const again = new BlockMapper(length, 0, (block, _bytes, digest) => {
    if (!sameBlockHash(digest, first, block)) same = false;
    return 0;
  });
  const buffer = Buffer.allocUnsafe(Math.min(PREFIX_READ_BYTES, length));
  await readPrefix(length, handle, buffer, async (chunk) => {
    hash.update(chunk);
    await again.write(chunk);
  });
  return same;
}
