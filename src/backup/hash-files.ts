/**
 * restore --delta's comparison, the hashing: what a file of the target holds, as the
 * backup's manifest describes a file (its sha256, or the first 16 bytes of the sha256 of
 * each 8 KiB block where the entry has a block map). Run in the job workers
 * (job-pool.ts), a batch of files per task, so that the comparison uses every core.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { describeSystemError, LocalIoError } from "../errors.js";
import { BLOCK_HASH_BYTES, blockHash } from "./block-map.js";

export interface HashTask {
  /** `blockSize`: hash block by block (a block-mapped entry), else the whole file. */
  files: HashPiece[];
}

/**
 * A file, or with a block size a range of its blocks (`start`, a multiple of the block
 * size, and `length`): a large relation file is hashed by several jobs at once.
 */
export interface HashPiece {
  path: string;
  blockSize?: number | undefined;
  start?: number | undefined;
  length?: number | undefined;
}

export interface FileHashes {
  sha256?: string | undefined;
  /** 16 bytes per block. */
  blockHashes?: Uint8Array | undefined;
}

export interface HashResult {
  /** In the task's order. */
  hashed: FileHashes[];
}

/** Bytes read at once: a multiple of every block size a map has (8 KiB). */
const READ_BYTES = 1 << 20;

export async function hashFiles(task: HashTask): Promise<HashResult> {
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  const hashed: FileHashes[] = [];
  for (const file of task.files) hashed.push(await hashFile(file, buffer));
  return { hashed };
}

/**
 * A file's sha256 or, with a block size, its block hashes: one read of the file, one
 * pass of hashing (the block hashes are not followed by a whole-file hash).
 */
export async function hashFile(
  { path, blockSize, start = 0, length = Number.POSITIVE_INFINITY }: HashPiece,
  buffer: Buffer = Buffer.allocUnsafe(READ_BYTES),
): Promise<FileHashes> {
  const handle = await open(path, "r").catch((error: unknown) => {
    throw new LocalIoError(`cannot read ${path}: ${describeSystemError(error)}`, { cause: error });
  });
  try {
    const step =
      blockSize === undefined
        ? buffer.length
        : Math.max(1, Math.floor(buffer.length / blockSize)) * blockSize;
    const whole = blockSize === undefined ? createHash("sha256") : undefined;
    // Block hashes go into one buffer sized from the file's size (grown if it grows).
    let out = Buffer.allocUnsafe(
      blockSize === undefined
        ? 0
        : Math.ceil(Math.min(length, Math.max(0, (await handle.stat()).size - start)) / blockSize) *
            BLOCK_HASH_BYTES,
    );
    let blocks = 0;
    let position = start;
    const end = start + length;
    for (;;) {
      const want = Math.min(step, end - position);
      let fill = 0;
      while (fill < want) {
        const { bytesRead } = await handle.read(buffer, fill, want - fill, position + fill);
        if (bytesRead === 0) break;
        fill += bytesRead;
      }
      position += fill;
      if (fill === 0) break;
      if (whole) whole.update(buffer.subarray(0, fill));
      else if (blockSize !== undefined)
        for (let at = 0; at < fill; at += blockSize) {
          if ((blocks + 1) * BLOCK_HASH_BYTES > out.length) {
            const grown = Buffer.allocUnsafe(
              Math.max(out.length * 2, (blocks + 1) * BLOCK_HASH_BYTES),
            );
            out.copy(grown, 0, 0, blocks * BLOCK_HASH_BYTES);
            out = grown;
          }
          blockHash(buffer.subarray(at, Math.min(at + blockSize, fill))).copy(
            out,
            blocks * BLOCK_HASH_BYTES,
          );
          blocks++;
        }
      if (fill < want || position >= end) break;
    }
    return whole
      ? { sha256: whole.digest("hex") }
      : { blockHashes: out.subarray(0, blocks * BLOCK_HASH_BYTES) };
  } finally {
    await handle.close();
  }
}
