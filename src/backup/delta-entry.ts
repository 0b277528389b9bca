/**
 * The delta entry of an incremental backup (FORMAT.md, "Incremental backups"): the tar
 * entry of a file whose manifest entry has `stored: "blocks"`, holding only the blocks
 * that changed since the parent.
 *
 *   "PGHADLT1"              8 bytes magic
 *   uint32 LE               block size (8192)
 *   uint32 LE               count of blocks in this entry
 *   uint64 LE               the complete file's size
 *   count x uint32 LE       block numbers, strictly ascending
 *   count x block bytes     the blocks (the file's last block may be short: its bytes only)
 *
 * The encoder writes the head (everything before the block bytes); the decoder is a
 * streaming one with fixed memory (it keeps the block numbers, 4 bytes a block), so a
 * restore can write each piece of a block at its file offset as the tar streams in.
 * Every entry is checked against its own size: a crafted or truncated one is an
 * IntegrityError, never a file written past its size.
 */
import { IntegrityError } from "../errors.js";

export const DELTA_MAGIC = Buffer.from("PGHADLT1", "latin1");
/** The block size of block maps and delta entries: PostgreSQL's default BLCKSZ. */
export const BLOCK_SIZE = 8192;
const FIXED_HEAD = 24;

export interface DeltaHead {
  blockSize: number;
  /** The complete file's size. */
  fileSize: number;
  /** Block numbers of the blocks in the entry, ascending. */
  blocks: Uint32Array;
}

/** Blocks of a file of `fileSize` bytes (the last one may be short). */
export function blockCount(fileSize: number, blockSize = BLOCK_SIZE): number {
  return Math.ceil(fileSize / blockSize);
}

/** Bytes of block `block` of a file of `fileSize` bytes. */
export function blockLength(block: number, fileSize: number, blockSize = BLOCK_SIZE): number {
  return Math.max(0, Math.min(blockSize, fileSize - block * blockSize));
}

/** Size of the head: magic, sizes, count and block numbers. */
export function deltaHeadSize(count: number): number {
  return FIXED_HEAD + 4 * count;
}

/** Size of the whole entry (the tar entry's size). */
export function deltaEntrySize(head: DeltaHead): number {
  let data = 0;
  for (const block of head.blocks) data += blockLength(block, head.fileSize, head.blockSize);
  return deltaHeadSize(head.blocks.length) + data;
}

/** The head's bytes; the blocks' bytes follow it, in the order of `head.blocks`. */
export function encodeDeltaHead(head: DeltaHead): Buffer {
  checkHead(head, (message) => new RangeError(message));
  const out = Buffer.alloc(deltaHeadSize(head.blocks.length));
  DELTA_MAGIC.copy(out, 0);
  out.writeUInt32LE(head.blockSize, 8);
  out.writeUInt32LE(head.blocks.length, 12);
  out.writeBigUInt64LE(BigInt(head.fileSize), 16);
  for (let i = 0; i < head.blocks.length; i++)
    out.writeUInt32LE(head.blocks[i] as number, FIXED_HEAD + 4 * i);
  return out;
}

function checkHead(head: DeltaHead, fail: (message: string) => Error): void {
  const { blockSize, fileSize, blocks } = head;
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize > 1 << 20)
    throw fail(`block size ${blockSize} is out of range`);
  if (!Number.isSafeInteger(fileSize) || fileSize < 0)
    throw fail(`file size ${fileSize} is out of range`);
  const total = blockCount(fileSize, blockSize);
  let previous = -1;
  for (const block of blocks) {
    if (block <= previous)
      throw fail(`block numbers are not ascending (${block} after ${previous})`);
    if (block >= total) throw fail(`block ${block} is past the end of a file of ${fileSize} bytes`);
    previous = block;
  }
}

export interface DeltaSink {
  /** Once, before any data: the entry's head. */
  head(head: DeltaHead): void;
  /**
   * Bytes of block `block` that belong at `offset` of the complete file. A block may come
   * in several pieces; `bytes` is only valid during the call.
   */
  data(block: number, offset: number, bytes: Uint8Array): void;
}

/**
 * A streaming decoder of one delta entry of `entrySize` bytes (the tar entry's size):
 * write() its bytes in pieces of any size, then end(). Fixed memory apart from the block
 * numbers.
 */
export class DeltaDecoder {
  private readonly fixed = Buffer.alloc(FIXED_HEAD);
  private received = 0;
  private decoded: DeltaHead | undefined;
  private numbers: Buffer | undefined;
  private numbersFilled = 0;
  /** Position in the data part: which block of the entry, and bytes of it already seen. */
  private index = 0;
  private within = 0;

  constructor(
    private readonly entrySize: number,
    private readonly sink: DeltaSink,
    private readonly name = "delta entry",
  ) {}

  private fail(message: string): IntegrityError {
    return new IntegrityError(`${this.name}: ${message}`);
  }

  write(chunk: Uint8Array): void {
    if (this.received + chunk.length > this.entrySize)
      throw this.fail(`more than the entry's ${this.entrySize} bytes`);
    let rest = chunk;
    while (rest.length > 0) {
      if (this.received < FIXED_HEAD) {
        const take = Math.min(rest.length, FIXED_HEAD - this.received);
        this.fixed.set(rest.subarray(0, take), this.received);
        this.received += take;
        rest = rest.subarray(take);
        if (this.received === FIXED_HEAD) this.readFixed();
        continue;
      }
      const numbers = this.numbers as Buffer;
      if (this.numbersFilled < numbers.length) {
        const take = Math.min(rest.length, numbers.length - this.numbersFilled);
        numbers.set(rest.subarray(0, take), this.numbersFilled);
        this.numbersFilled += take;
        this.received += take;
        rest = rest.subarray(take);
        if (this.numbersFilled === numbers.length) this.readNumbers();
        continue;
      }
      const head = this.decoded as DeltaHead;
      const block = head.blocks[this.index];
      if (block === undefined) throw this.fail("bytes after the last block");
      const length = blockLength(block, head.fileSize, head.blockSize);
      const take = Math.min(rest.length, length - this.within);
      this.sink.data(block, block * head.blockSize + this.within, rest.subarray(0, take));
      this.within += take;
      this.received += take;
      rest = rest.subarray(take);
      if (this.within === length) {
        this.index++;
        this.within = 0;
      }
    }
  }

  private readFixed(): void {
    if (!this.fixed.subarray(0, 8).equals(DELTA_MAGIC)) throw this.fail("bad magic");
    const blockSize = this.fixed.readUInt32LE(8);
    const count = this.fixed.readUInt32LE(12);
    const fileSize = this.fixed.readBigUInt64LE(16);
    if (fileSize > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail("file size out of range");
    if (blockSize < 512 || blockSize > 1 << 20) throw this.fail(`block size ${blockSize}`);
    if (deltaHeadSize(count) > this.entrySize)
      throw this.fail(`${count} blocks do not fit in ${this.entrySize} bytes`);
    this.decoded = { blockSize, fileSize: Number(fileSize), blocks: new Uint32Array(count) };
    this.numbers = Buffer.alloc(4 * count);
    if (count === 0) this.readNumbers();
  }

  private readNumbers(): void {
    const head = this.decoded as DeltaHead;
    const numbers = this.numbers as Buffer;
    for (let i = 0; i < head.blocks.length; i++) head.blocks[i] = numbers.readUInt32LE(4 * i);
    this.numbers = Buffer.alloc(0);
    checkHead(head, (message) => this.fail(message));
    if (deltaEntrySize(head) !== this.entrySize)
      throw this.fail(
        `its blocks make ${deltaEntrySize(head)} bytes, the entry has ${this.entrySize}`,
      );
    this.sink.head(head);
  }

  /** The entry ended: every byte of it must have come. */
  end(): DeltaHead {
    if (this.received !== this.entrySize || !this.decoded)
      throw this.fail(`truncated (${this.received} of ${this.entrySize} bytes)`);
    return this.decoded;
  }
}

/** A whole entry in one buffer (tests, small entries): its head and blocks. */
export function decodeDeltaEntry(bytes: Uint8Array): {
  head: DeltaHead;
  blocks: Map<number, Buffer>;
} {
  const blocks = new Map<number, Buffer>();
  const decoder = new DeltaDecoder(bytes.length, {
    head: () => undefined,
    data: (block, _offset, piece) => {
      const before = blocks.get(block);
      blocks.set(block, before ? Buffer.concat([before, piece]) : Buffer.from(piece));
    },
  });
  decoder.write(bytes);
  return { head: decoder.end(), blocks };
}
