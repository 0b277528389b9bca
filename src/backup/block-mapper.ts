/**
 * BlockMapper: builds a file's block map (block-map.ts) as its bytes pass, in chunks of
 * any length: cuts them into 8 KiB blocks (the last one may be short), hashes each, and
 * records which backup of the chain holds it. A block split across chunks is carried in a
 * fixed buffer; nothing is allocated per block but its digest.
 */
import { BLOCK_HASH_BYTES, blockHash, encodeBlockMap } from "./block-map.js";
import { BLOCK_SIZE, blockCount } from "./delta-entry.js";

/**
 * Which backup holds block `block` (its index in `[...chain, id]`). `bytes` and `digest`
 * are valid until the call returns, or until its promise settles (the mapper waits for it).
 */
export type BlockDecision = (
  block: number,
  bytes: Uint8Array,
  digest: Buffer,
) => number | Promise<number>;

export class BlockMapper {
  /** 16 bytes a block, filled as blocks pass. */
  readonly hashes: Buffer;
  private readonly from: Uint8Array;
  private readonly carry = Buffer.allocUnsafe(BLOCK_SIZE);
  private carried = 0;
  private block = 0;

  /** `decide` absent: every block is this backup's (`chainIndex`). */
  constructor(
    private readonly size: number,
    private readonly chainIndex: number,
    private readonly decide?: BlockDecision,
  ) {
    const count = blockCount(size);
    this.hashes = Buffer.alloc(count * BLOCK_HASH_BYTES);
    this.from = new Uint8Array(count);
  }

  /** Blocks that have passed. */
  get blocks(): number {
    return this.block;
  }

  private lengthOf(block: number): number {
    return Math.min(BLOCK_SIZE, this.size - block * BLOCK_SIZE);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const length = this.lengthOf(this.block);
      if (length <= 0) return; // past the mapped size: never, the reads stop there
      if (this.carried === 0 && rest.length >= length) {
        await this.finish(rest.subarray(0, length));
        rest = rest.subarray(length);
        continue;
      }
      const take = Math.min(rest.length, length - this.carried);
      this.carry.set(rest.subarray(0, take), this.carried);
      this.carried += take;
      rest = rest.subarray(take);
      if (this.carried === length) {
        this.carried = 0;
        await this.finish(this.carry.subarray(0, length));
      }
    }
  }

  private async finish(bytes: Uint8Array): Promise<void> {
    const block = this.block++;
    const digest = blockHash(bytes);
    digest.copy(this.hashes, block * BLOCK_HASH_BYTES);
    if (!this.decide) {
      this.from[block] = this.chainIndex;
      return;
    }
    const decided = this.decide(block, bytes, digest);
    this.from[block] = typeof decided === "number" ? decided : await decided;
  }

  /** The map, once every block of the size has passed. */
  end() {
    if (this.block !== this.from.length || this.carried !== 0)
      throw new Error(`block map of ${this.size} bytes ended at block ${this.block}`);
    return encodeBlockMap({ hashes: this.hashes, from: this.from });
  }
}

/** Whether `digest` (16 bytes or more) is block `block`'s hash in `hashes`; allocates nothing. */
export function sameBlockHash(digest: Buffer, hashes: Buffer, block: number): boolean {
  const at = block * BLOCK_HASH_BYTES;
  if (at + BLOCK_HASH_BYTES > hashes.length) return false;
  return digest.compare(hashes, at, at + BLOCK_HASH_BYTES, 0, BLOCK_HASH_BYTES) === 0;
}
