/**
 * BlockSink: writes the wanted blocks of one tar entry (assembly-plan.ts, how "blocks")
 * into its file (open, written at the blocks' offsets), on a restore job's thread. The entry is
 * either a member's complete copy of the file or a delta entry (FORMAT.md):
 *   "PGHADLT1", uint32 LE block size, uint32 LE count, uint64 LE file size,
 *   count x uint32 LE block numbers (ascending), then the blocks (the file's last may be short).
 * Every block written is checked against its 16-byte hash first; a wanted block the entry
 * does not have fails the restore. Memory: one block and one run buffer of adjacent blocks,
 * lent by the caller (BlockScratch): a chain member's object plans blocks of hundreds of
 * small files, and a buffer of 1 MiB each, freed by the garbage collector, cost more than
 * their blocks (allocations, collections, fresh pages).
 *
 * Runs are written with synchronous pwrite: a job worker's thread has nothing else to do
 * meanwhile, and changed blocks are scattered, so runs are short (often one block) and an
 * asynchronous write's round trip through libuv's thread pool cost more than the write:
 * awaited one at a time, it left the job idle half of a chain restore.
 */
import { writeSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { IntegrityError } from "../errors.js";
import type { EntryPlan } from "./assembly-plan.js";
import { blockHash } from "./block-map.js";
import { BLOCK_HASH_BYTES } from "./chain-manifest.js";

export const DELTA_MAGIC = "PGHADLT1";
const DELTA_HEADER_BYTES = 24;
const RUN_BYTES = 1 << 20;

type BlocksPlan = Extract<EntryPlan, { how: "blocks" }>;

/**
 * The buffers a sink writes from, reused by every sink of one unpack: its entries come one
 * after the other, so one sink at a time uses them (each ends, or the unpack fails, before
 * the next is made).
 */
export class BlockScratch {
  readonly run = Buffer.allocUnsafeSlow(RUN_BYTES);
  private block = Buffer.allocUnsafeSlow(0);

  blockOf(size: number): Buffer {
    if (this.block.length < size) this.block = Buffer.allocUnsafeSlow(size);
    return this.block;
  }
}

export class BlockSink {
  private readonly hashes: Buffer;
  /** The next wanted block (index into plan.blocks). */
  private wanted = 0;
  private readonly block: Buffer;
  private blockFill = 0;
  private readonly run: Buffer;
  private runStart = 0;
  private runFill = 0;
  /** Whole entry: bytes of the entry seen. */
  private position = 0;
  /** Delta entry: header, then block numbers, then blocks. */
  private readonly header = Buffer.alloc(DELTA_HEADER_BYTES);
  private headerFill = 0;
  private numbers: Buffer | undefined;
  private numbersFill = 0;
  private count = 0;
  private entrySize = 0;
  /** Delta entry: which of its blocks is being read, and how much of it is left. */
  private at = 0;
  private left = -1;
  /** Delta entry: where the next wanted block was last looked for (wantFrom). */
  private seek = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly plan: BlocksPlan,
    private readonly what: string,
    scratch: BlockScratch = new BlockScratch(),
  ) {
    // A Buffer in the planning thread, a Uint8Array once posted to a job's.
    this.hashes = Buffer.from(plan.hashes.buffer, plan.hashes.byteOffset, plan.hashes.byteLength);
    this.block = scratch.blockOf(plan.blockSize);
    this.run = scratch.run;
  }

  /** The restored file's length of block `b`. */
  private lengthOf(b: number): number {
    return Math.min(this.plan.blockSize, this.plan.size - b * this.plan.blockSize);
  }

  /**
   * The offset in the entry of the next byte this sink needs (0: whichever comes next;
   * Infinity: none, the rest of the entry may be passed over as a gap).
   */
  wantFrom(): number {
    const b = this.plan.blocks[this.wanted];
    if (b === undefined) return Number.POSITIVE_INFINITY;
    const { blockSize } = this.plan;
    if (!this.plan.delta) return Math.max(this.position, b * blockSize);
    const numbers = this.numbers;
    if (!numbers || this.numbersFill < numbers.length) return 0;
    // The wanted block's place among the entry's blocks (numbers ascend; the cursor only
    // moves forward, as the wanted blocks do).
    this.seek = Math.max(this.seek, this.at);
    while (this.seek < this.count && numbers.readUInt32LE(this.seek * 4) < b) this.seek++;
    if (this.seek >= this.count || numbers.readUInt32LE(this.seek * 4) !== b)
      return Number.POSITIVE_INFINITY; // end() says which block is missing
    if (this.seek === this.at && this.left >= 0) return 0;
    return DELTA_HEADER_BYTES + numbers.length + this.seek * blockSize;
  }

  /** The next `length` bytes of the entry, passed over: none of them may be wanted. */
  gap(length: number): void {
    if (!this.plan.delta) {
      const b = this.plan.blocks[this.wanted];
      this.position += length;
      if (b !== undefined && this.position > b * this.plan.blockSize)
        throw this.bad(`block ${b} was passed over`);
      return;
    }
    const numbers = this.numbers;
    if (!numbers || this.numbersFill < numbers.length) throw this.bad("its head was passed over");
    let rest = length;
    while (rest > 0) {
      if (this.at >= this.count) throw this.bad("it is longer than its blocks");
      const number = numbers.readUInt32LE(this.at * 4);
      if (this.plan.blocks[this.wanted] === number)
        throw this.bad(`block ${number} was passed over`);
      if (this.left < 0)
        this.left = Math.min(this.plan.blockSize, this.entrySize - number * this.plan.blockSize);
      const take = Math.min(rest, this.left);
      this.left -= take;
      rest -= take;
      if (this.left === 0) {
        this.at++;
        this.left = -1;
      }
    }
  }

  take(bytes: Uint8Array): void {
    if (this.plan.delta) this.takeDelta(bytes);
    else this.takeWhole(bytes);
  }

  private takeWhole(bytes: Uint8Array): void {
    const { blocks, blockSize } = this.plan;
    let rest = bytes;
    while (rest.length > 0) {
      const b = blocks[this.wanted];
      if (b === undefined) return; // nothing more wanted: the rest is read past
      const start = b * blockSize;
      if (this.position < start) {
        const skip = Math.min(rest.length, start - this.position);
        this.position += skip;
        rest = rest.subarray(skip);
        continue;
      }
      const end = start + this.lengthOf(b);
      const take = Math.min(rest.length, end - this.position);
      this.block.set(rest.subarray(0, take), this.position - start);
      this.position += take;
      rest = rest.subarray(take);
      if (this.position === end) this.put(b, this.block.subarray(0, end - start));
    }
  }

  private takeDelta(bytes: Uint8Array): void {
    let rest = bytes;
    while (rest.length > 0) {
      if (this.headerFill < DELTA_HEADER_BYTES) {
        const take = Math.min(rest.length, DELTA_HEADER_BYTES - this.headerFill);
        this.header.set(rest.subarray(0, take), this.headerFill);
        this.headerFill += take;
        rest = rest.subarray(take);
        if (this.headerFill === DELTA_HEADER_BYTES) this.readHeader();
        continue;
      }
      const numbers = this.numbers as Buffer;
      if (this.numbersFill < numbers.length) {
        const take = Math.min(rest.length, numbers.length - this.numbersFill);
        numbers.set(rest.subarray(0, take), this.numbersFill);
        this.numbersFill += take;
        rest = rest.subarray(take);
        if (this.numbersFill === numbers.length) this.checkNumbers();
        continue;
      }
      if (this.at >= this.count) throw this.bad("it is longer than its blocks");
      const number = numbers.readUInt32LE(this.at * 4);
      if (this.left < 0) {
        this.left = Math.min(this.plan.blockSize, this.entrySize - number * this.plan.blockSize);
        this.blockFill = 0;
      }
      const take = Math.min(rest.length, this.left);
      const isWanted = this.plan.blocks[this.wanted] === number;
      if (isWanted) {
        const room = Math.min(take, this.lengthOf(number) - this.blockFill);
        if (room > 0) this.block.set(rest.subarray(0, room), this.blockFill);
      }
      this.blockFill += take;
      this.left -= take;
      rest = rest.subarray(take);
      if (this.left === 0) {
        if (isWanted) {
          const length = this.lengthOf(number);
          if (this.blockFill < length) throw this.bad(`its block ${number} is short`);
          this.put(number, this.block.subarray(0, length));
        }
        this.at++;
        this.left = -1;
      }
    }
  }

  private readHeader(): void {
    const h = this.header;
    if (h.subarray(0, 8).toString("latin1") !== DELTA_MAGIC)
      throw this.bad("it is not a delta entry");
    if (h.readUInt32LE(8) !== this.plan.blockSize) throw this.bad("its block size differs");
    this.count = h.readUInt32LE(12);
    this.entrySize = Number(h.readBigUInt64LE(16));
    if (this.count > Math.ceil(this.entrySize / this.plan.blockSize))
      throw this.bad("it has more blocks than its file");
    this.numbers = Buffer.alloc(this.count * 4);
    if (this.count === 0) this.checkNumbers();
  }

  private checkNumbers(): void {
    const numbers = this.numbers as Buffer;
    const last = Math.ceil(this.entrySize / this.plan.blockSize);
    for (let i = 0; i < this.count; i++) {
      const n = numbers.readUInt32LE(i * 4);
      if (n >= last || (i > 0 && n <= numbers.readUInt32LE(i * 4 - 4)))
        throw this.bad("its block numbers are not ascending within the file");
    }
  }

  /** Checks block `b` against its hash and adds it to the run of adjacent blocks. */
  private put(b: number, bytes: Buffer): void {
    const hash = blockHash(bytes);
    const at = this.wanted * BLOCK_HASH_BYTES;
    if (!hash.equals(this.hashes.subarray(at, at + BLOCK_HASH_BYTES)))
      throw new IntegrityError(`${this.what}: block ${b} does not match its manifest hash`);
    this.wanted++;
    const offset = b * this.plan.blockSize;
    if (
      this.runFill > 0 &&
      (offset !== this.runStart + this.runFill || this.runFill + bytes.length > RUN_BYTES)
    )
      this.flush();
    if (this.runFill === 0) this.runStart = offset;
    bytes.copy(this.run, this.runFill);
    this.runFill += bytes.length;
  }

  private flush(): void {
    let done = 0;
    while (done < this.runFill)
      done += writeSync(this.handle.fd, this.run, done, this.runFill - done, this.runStart + done);
    this.runFill = 0;
  }

  /** The entry ended: every wanted block must have come. Returns how many were written. */
  end(): number {
    if (this.plan.delta && (this.headerFill < DELTA_HEADER_BYTES || this.at < this.count))
      throw this.bad("it ends early");
    const missing = this.plan.blocks[this.wanted];
    if (missing !== undefined) throw this.bad(`it does not have block ${missing}`);
    this.flush();
    return this.wanted;
  }

  private bad(why: string): IntegrityError {
    return new IntegrityError(`${this.what}: ${why}`);
  }
}
