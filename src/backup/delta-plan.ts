/**
 * planDelta: pure. restore --delta: which files of the backup the existing data directory
 * already has right (same size, and same sha256 or for a block-mapped file the same hash
 * of every block: kept), which blocks of the others it has right
 * (same 16-byte hash at the same place: reused, the file is cut to size and only the
 * other blocks are written), and which of its files the backup does not have (removed).
 */

import { BlockBits } from "./block-map.js";
import { BLOCK_HASH_BYTES, blockCount, type ChainFileEntry, fileKey } from "./chain-manifest.js";
import { PG_CONTROL } from "./pg-control-last.js";

/** A regular file found in the target, by `${part}/${path}`. */
export interface ExistingFile {
  size: number;
  /** Taken when the backup has the file, without a block map. */
  sha256?: string | undefined;
  /** 16 bytes per block, taken (instead of the sha256) when the backup's entry has a block map. */
  blockHashes?: Buffer | undefined;
}

export interface DeltaPlan {
  keep: Set<string>;
  /** Of each file rewritten in place, the blocks already right. */
  reuse: Map<string, BlockBits>;
  kept: number;
  keptBytes: number;
  /** Files of the backup that are written (new, or differing). */
  rewritten: number;
  /** Bytes written: whole files, or the differing blocks of a reused file. */
  writeBytes: number;
  /** Existing files the backup does not have, by key. */
  removed: string[];
  removedBytes: number;
}

export function planDelta(
  files: readonly ChainFileEntry[],
  existing: ReadonlyMap<string, ExistingFile>,
): DeltaPlan {
  const plan: DeltaPlan = {
    keep: new Set(),
    reuse: new Map(),
    kept: 0,
    keptBytes: 0,
    rewritten: 0,
    writeBytes: 0,
    removed: [],
    removedBytes: 0,
  };
  const wanted = new Set<string>();
  for (const file of files) {
    const key = fileKey(file);
    wanted.add(key);
    // pg_control is always written whole (last: pg-control-last.ts), never kept or reused.
    const found = file.part === "base" && file.path === PG_CONTROL ? undefined : existing.get(key);
    const map = file.blocks;
    const hashes = map ? Buffer.from(map.hashes, "base64") : undefined;
    // Equal content: the same size, and the same sha256 or (block-mapped) the same hash
    // for every block.
    const equal =
      found?.size === file.size &&
      (hashes && found.blockHashes
        ? found.blockHashes.equals(hashes)
        : found.sha256 !== undefined && found.sha256 === file.sha256);
    if (found && equal) {
      plan.keep.add(key);
      plan.kept++;
      plan.keptBytes += file.size;
      continue;
    }
    plan.rewritten++;
    if (!found?.blockHashes || !map || !hashes) {
      plan.writeBytes += file.size;
      continue;
    }
    const count = blockCount(file.size, map.size);
    const common = Math.min(count, Math.floor(found.blockHashes.length / BLOCK_HASH_BYTES));
    const right = new BlockBits(common);
    for (let b = 0; b < common; b++) {
      const at = b * BLOCK_HASH_BYTES;
      if (
        found.blockHashes
          .subarray(at, at + BLOCK_HASH_BYTES)
          .equals(hashes.subarray(at, at + BLOCK_HASH_BYTES))
      )
        right.add(b);
    }
    plan.reuse.set(key, right);
    for (let b = 0; b < count; b++)
      if (!right.has(b)) plan.writeBytes += Math.min(map.size, file.size - b * map.size);
  }
  for (const [key, found] of existing) {
    if (wanted.has(key)) continue;
    plan.removed.push(key);
    plan.removedBytes += found.size;
  }
  plan.removed.sort();
  return plan;
}
