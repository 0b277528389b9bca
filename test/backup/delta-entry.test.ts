/** The delta entry of an incremental backup: what the encoder writes, the decoder reads back. */
import { describe, expect, it } from "vitest";
import {
  BLOCK_SIZE,
  blockCount,
  blockLength,
  DeltaDecoder,
  type DeltaHead,
  decodeDeltaEntry,
  deltaEntrySize,
  encodeDeltaHead,
} from "../../src/backup/delta-entry.js";
import { IntegrityError } from "../../src/errors.js";

/** An entry of the given blocks of `file`, as the backup writes it. */
function entryOf(file: Buffer, blocks: number[]): Buffer {
  const head: DeltaHead = {
    blockSize: BLOCK_SIZE,
    fileSize: file.length,
    blocks: Uint32Array.from(blocks),
  };
  const parts = [encodeDeltaHead(head)];
  for (const block of blocks)
    parts.push(
      file.subarray(block * BLOCK_SIZE, block * BLOCK_SIZE + blockLength(block, file.length)),
    );
  const out = Buffer.concat(parts);
  expect(out.length).toBe(deltaEntrySize(head));
  return out;
}

function fileOf(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe("delta entries", () => {
  it("round-trip blocks, a short last block included, fed in pieces of any size", () => {
    const file = fileOf(5 * BLOCK_SIZE + 100);
    const blocks = [0, 2, 5];
    const entry = entryOf(file, blocks);
    expect(entry.length).toBe(24 + 3 * 4 + 2 * BLOCK_SIZE + 100);
    expect(entry.subarray(0, 8).toString("latin1")).toBe("PGHADLT1");
    expect(entry.readUInt32LE(8)).toBe(8192);
    expect(entry.readUInt32LE(12)).toBe(3);
    expect(Number(entry.readBigUInt64LE(16))).toBe(file.length);
    for (const piece of [1, 7, 1000, 8192, entry.length]) {
      const assembled = Buffer.alloc(file.length);
      const seen: number[] = [];
      const decoder = new DeltaDecoder(entry.length, {
        head: (head) => seen.push(...head.blocks),
        data: (_block, offset, bytes) => assembled.set(bytes, offset),
      });
      for (let at = 0; at < entry.length; at += piece)
        decoder.write(entry.subarray(at, at + piece));
      const head = decoder.end();
      expect(head.fileSize).toBe(file.length);
      expect(seen).toEqual(blocks);
      for (const block of blocks) {
        const range = [block * BLOCK_SIZE, block * BLOCK_SIZE + blockLength(block, file.length)];
        expect(
          assembled.subarray(range[0], range[1]).equals(file.subarray(range[0], range[1])),
        ).toBe(true);
      }
    }
  });

  it("an entry of no blocks (a file that only shrank) and of an empty file", () => {
    const shrunk = decodeDeltaEntry(entryOf(fileOf(3 * BLOCK_SIZE), []));
    expect(shrunk.head.fileSize).toBe(3 * BLOCK_SIZE);
    expect(shrunk.blocks.size).toBe(0);
    const empty = decodeDeltaEntry(entryOf(Buffer.alloc(0), []));
    expect(empty.head.fileSize).toBe(0);
  });

  it("block counts and lengths of a file", () => {
    expect(blockCount(0)).toBe(0);
    expect(blockCount(1)).toBe(1);
    expect(blockCount(BLOCK_SIZE)).toBe(1);
    expect(blockCount(BLOCK_SIZE + 1)).toBe(2);
    expect(blockLength(1, BLOCK_SIZE + 1)).toBe(1);
    expect(blockLength(2, BLOCK_SIZE + 1)).toBe(0);
  });

  it("the encoder refuses block numbers out of order or past the file", () => {
    const head = (blocks: number[]) => ({
      blockSize: BLOCK_SIZE,
      fileSize: 2 * BLOCK_SIZE,
      blocks: Uint32Array.from(blocks),
    });
    expect(() => encodeDeltaHead(head([1, 0]))).toThrow(/ascending/);
    expect(() => encodeDeltaHead(head([1, 1]))).toThrow(/ascending/);
    expect(() => encodeDeltaHead(head([2]))).toThrow(/past the end/);
  });

  it("crafted or damaged entries are integrity errors, never bytes past the file", () => {
    const file = fileOf(2 * BLOCK_SIZE + 10);
    const good = entryOf(file, [1, 2]);
    const decode = (bytes: Buffer, size = bytes.length) => {
      const decoder = new DeltaDecoder(size, { head: () => undefined, data: () => undefined });
      decoder.write(bytes);
      return decoder.end();
    };
    const damaged = (edit: (b: Buffer) => void) => {
      const copy = Buffer.from(good);
      edit(copy);
      return copy;
    };
    expect(() => decode(damaged((b) => b.write("X", 0)))).toThrow(IntegrityError);
    expect(() => decode(damaged((b) => b.writeUInt32LE(3, 12)))).toThrow(IntegrityError); // count
    expect(() => decode(damaged((b) => b.writeUInt32LE(5, 24 + 4)))).toThrow(/past the end/);
    expect(() =>
      decode(damaged((b) => b.writeUInt32LE(0, 24 + 4) && b.writeUInt32LE(1, 24))),
    ).toThrow(/ascending/);
    expect(() => decode(damaged((b) => b.writeBigUInt64LE(10n, 16)))).toThrow(IntegrityError); // size
    expect(() => decode(good.subarray(0, good.length - 1), good.length)).toThrow(/truncated/);
    expect(() => decode(good, good.length - 1)).toThrow(IntegrityError);
    expect(() => decode(Buffer.concat([good, Buffer.alloc(1)]))).toThrow(IntegrityError);
    expect(decode(good).blocks).toEqual(Uint32Array.from([1, 2]));
  });
});
