/** BlockMapper cuts bytes into blocks however they come; sameBlockHash finds a block's hash. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BLOCK_HASH_BYTES, blockHash, decodeBlockMap } from "../../src/backup/block-map.js";
import { BlockMapper, sameBlockHash } from "../../src/backup/block-mapper.js";
import { BLOCK_SIZE } from "../../src/backup/delta-entry.js";
import type { BackupFileEntry } from "../../src/repository/backup-manifest.js";

function bytesOf(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >> 13)) & 0xff;
  return out;
}

const sha16 = (bytes: Uint8Array) =>
  createHash("sha256").update(bytes).digest().subarray(0, BLOCK_HASH_BYTES);

describe("BlockMapper", () => {
  it("maps the same blocks whatever the chunks, a short last block included", async () => {
    const size = 3 * BLOCK_SIZE + 100;
    const bytes = bytesOf(size);
    const expected = Buffer.concat(
      [0, 1, 2, 3].map((b) => sha16(bytes.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE))),
    );
    for (const chunk of [1, 7, 4096, BLOCK_SIZE, BLOCK_SIZE + 1, size]) {
      const seen: number[] = [];
      const mapper = new BlockMapper(size, 2, (block, piece, digest) => {
        seen.push(block);
        expect(digest.subarray(0, BLOCK_HASH_BYTES).equals(sha16(piece)), `${chunk}`).toBe(true);
        return block === 1 ? 0 : 2;
      });
      for (let at = 0; at < size; at += chunk) await mapper.write(bytes.subarray(at, at + chunk));
      expect(seen, `${chunk}`).toEqual([0, 1, 2, 3]);
      expect(mapper.hashes.equals(expected), `${chunk}`).toBe(true);
      const map = mapper.end();
      const entry = { part: "base", path: "base/5/1", size, blocks: map } as BackupFileEntry;
      expect([...decodeBlockMap(entry, 3).from], `${chunk}`).toEqual([2, 0, 2, 2]);
    }
  });

  it("waits for a decision that is a promise, and refuses to end before every block passed", async () => {
    const mapper = new BlockMapper(2 * BLOCK_SIZE, 1, async (block) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return block;
    });
    await mapper.write(bytesOf(BLOCK_SIZE));
    expect(() => mapper.end()).toThrow(/ended at block 1/);
    await mapper.write(bytesOf(BLOCK_SIZE));
    const entry = {
      part: "base",
      path: "base/5/1",
      size: 2 * BLOCK_SIZE,
      blocks: mapper.end(),
    } as BackupFileEntry;
    expect([...decodeBlockMap(entry, 2).from]).toEqual([0, 1]);
  });
});

describe("sameBlockHash", () => {
  const hashes = Buffer.concat([blockHash(bytesOf(10)), blockHash(bytesOf(20))]);
  it("compares a digest with block k's 16 bytes only", () => {
    const digest = createHash("sha256").update(bytesOf(20)).digest(); // 32 bytes
    expect(sameBlockHash(digest, hashes, 1)).toBe(true);
    expect(sameBlockHash(digest, hashes, 0)).toBe(false);
    const flipped = (at: number) => {
      const other = Buffer.from(digest);
      other.writeUInt8(other.readUInt8(at) ^ 1, at);
      return other;
    };
    expect(sameBlockHash(flipped(15), hashes, 1)).toBe(false);
    expect(sameBlockHash(flipped(16), hashes, 1)).toBe(true); // past the 16 bytes a map keeps
  });

  it("is false past the map's last block (a file that grew)", () => {
    expect(sameBlockHash(blockHash(bytesOf(20)), hashes, 2)).toBe(false);
    expect(sameBlockHash(blockHash(bytesOf(20)), Buffer.alloc(0), 0)).toBe(false);
  });
});
