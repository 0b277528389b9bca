import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockHash } from "../../src/backup/block-map.js";
import { hashFile, hashFiles } from "../../src/backup/hash-files.js";

const BLOCK = 8192;

describe("hashFile (restore --delta's comparison)", () => {
  let dir: string;
  let path: string;
  // 300 blocks and a short last one: more than one read buffer, and a partial block.
  const data = randomBytes(300 * BLOCK + 1234);
  const expected = Buffer.concat(
    Array.from({ length: 301 }, (_, b) => blockHash(data.subarray(b * BLOCK, (b + 1) * BLOCK))),
  );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-hash-"));
    path = join(dir, "16384");
    await writeFile(path, data);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("gives the whole file's sha256 without a block size", async () => {
    const got = await hashFile({ path });
    expect(got).toEqual({ sha256: createHash("sha256").update(data).digest("hex") });
  });

  it("gives every block's 16-byte hash, the short last block included", async () => {
    const got = await hashFile({ path, blockSize: BLOCK });
    expect(Buffer.from(got.blockHashes as Uint8Array).equals(expected)).toBe(true);
  });

  it("hashes pieces of whole blocks that put together give the whole map", async () => {
    const step = 7 * BLOCK;
    const pieces = [];
    for (let start = 0; start < data.length; start += step)
      pieces.push({ path, blockSize: BLOCK, start, length: step });
    const { hashed } = await hashFiles({ files: pieces });
    const joined = Buffer.concat(hashed.map((h) => Buffer.from(h.blockHashes as Uint8Array)));
    expect(joined.equals(expected)).toBe(true);
    // A piece past the end of the file holds no block.
    const past = await hashFile({ path, blockSize: BLOCK, start: 400 * BLOCK, length: step });
    expect(past.blockHashes?.length).toBe(0);
  });

  it("fails with a one-line error for a missing file", async () => {
    await expect(hashFile({ path: join(dir, "missing") })).rejects.toThrow(/cannot read/);
  });
});
