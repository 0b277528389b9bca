/**
 * Block maps (FORMAT.md, "Incremental backups"): for each relation file, the hash of every
 * 8 KiB block and which backup of the chain holds it. Pure functions, shared by the backup
 * that writes the maps and the restore that assembles a file from them.
 */
import * as crypto from "node:crypto";
import { IntegrityError } from "../errors.js";
import type { BackupFileEntry, BlockMap } from "../repository/backup-manifest.js";
import { BLOCK_SIZE, blockCount } from "./delta-entry.js";

/** Bytes of a block's hash: the first 16 bytes of its sha256. */
export const BLOCK_HASH_BYTES = 16;

/** Longest chain a map can name (`from` is one byte a block). */
export const MAX_CHAIN_BACKUPS = 255;

const RELATION_FILE = /^\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

/**
 * Whether a file gets a block map: a relation file (any fork, any segment) of `global/`,
 * `base/<db>/`, or a tablespace's `PG_*\/<db>/`. Everything else is compared whole.
 */
export function isBlockMapped(part: string, path: string): boolean {
  const parts = path.split("/");
  const name = parts.at(-1) ?? "";
  if (!RELATION_FILE.test(name)) return false;
  if (part === "base") {
    if (parts.length === 2) return parts[0] === "global";
    return parts.length === 3 && parts[0] === "base" && /^\d+$/.test(parts[1] ?? "");
  }
  return parts.length === 3 && /^PG_/.test(parts[0] ?? "") && /^\d+$/.test(parts[1] ?? "");
}

/**
 * A block's sha256 in one call: crypto.hash (Node 20.12 and newer) costs about 15% less
 * than a Hash object a block, and a backup hashes every block of every relation file.
 */
const sha256: (bytes: Uint8Array) => Buffer =
  // A namespace import: a named import of `hash` would not even load on an older Node 20.
  typeof crypto.hash === "function"
    ? (bytes) => crypto.hash("sha256", bytes, "buffer")
    : (bytes) => crypto.createHash("sha256").update(bytes).digest();

/** The hash a block map keeps for one block. */
export function blockHash(bytes: Uint8Array): Buffer {
  return sha256(bytes).subarray(0, BLOCK_HASH_BYTES);
}

/** A map in its decoded form: `hashes` 16 bytes a block, `from` one byte a block. */
export interface DecodedBlockMap {
  hashes: Buffer;
  from: Uint8Array;
}

export function encodeBlockMap(map: DecodedBlockMap): BlockMap {
  return {
    size: BLOCK_SIZE,
    hashes: map.hashes.toString("base64"),
    from: Buffer.from(map.from.buffer, map.from.byteOffset, map.from.length).toString("base64"),
  };
}

/**
 * An entry's map, checked against the entry's size and the chain: `backups` is the length
 * of `[...chain, id]` of the manifest it is in.
 */
export function decodeBlockMap(entry: BackupFileEntry, backups: number): DecodedBlockMap {
  const map = entry.blocks;
  const where = `the block map of ${entry.part}/${entry.path}`;
  if (!map || map.size !== BLOCK_SIZE)
    throw new IntegrityError(`${where} is missing or not of 8 KiB blocks`);
  const count = blockCount(entry.size, BLOCK_SIZE);
  const hashes = Buffer.from(map.hashes, "base64");
  const from = Buffer.from(map.from, "base64");
  if (hashes.length !== count * BLOCK_HASH_BYTES || from.length !== count)
    throw new IntegrityError(
      `${where} does not have the ${count} blocks of a ${entry.size}-byte file`,
    );
  for (const index of from)
    if (index >= backups)
      throw new IntegrityError(`${where} names backup ${index} of a chain of ${backups}`);
  return { hashes, from };
}

/** Block `block`'s hash in a decoded map. */
export function hashAt(hashes: Buffer, block: number): Buffer {
  return hashes.subarray(block * BLOCK_HASH_BYTES, (block + 1) * BLOCK_HASH_BYTES);
}

/** Which blocks of a file are already right (restore --delta): read by `has` only. */
export type BlockLookup = Pick<ReadonlySet<number>, "has">;

/**
 * A set of block numbers below a file's block count, one bit each: a 1 GiB file's blocks
 * cost 16 KiB, not the 4 MB or more of a Set of 131,072 numbers (restore --delta keeps one
 * for every file it rewrites in place).
 */
export class BlockBits implements BlockLookup {
  private readonly bits: Uint8Array;

  constructor(readonly count: number) {
    this.bits = new Uint8Array(Math.ceil(count / 8));
  }

  add(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.count)
      throw new RangeError(`block ${block} is not below ${this.count}`);
    const byte = block >> 3;
    this.bits[byte] = (this.bits[byte] as number) | (1 << (block & 7));
  }

  has(block: number): boolean {
    if (!Number.isInteger(block) || block < 0 || block >= this.count) return false;
    return ((this.bits[block >> 3] as number) & (1 << (block & 7))) !== 0;
  }

  /** The blocks in the set, ascending. */
  *[Symbol.iterator](): Generator<number> {
    for (let block = 0; block < this.count; block++) if (this.has(block)) yield block;
  }
}
