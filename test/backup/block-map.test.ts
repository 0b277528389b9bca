/** Which files get block maps, and how maps are encoded and checked. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BlockBits,
  blockHash,
  decodeBlockMap,
  encodeBlockMap,
  hashAt,
  isBlockMapped,
} from "../../src/backup/block-map.js";
import { IntegrityError } from "../../src/errors.js";
import type { BackupFileEntry } from "../../src/repository/backup-manifest.js";

describe("block maps", () => {
  it("are kept for relation files of every fork and segment, in global, databases and tablespaces", () => {
    for (const path of [
      "global/1262",
      "base/5/16384",
      "base/5/16384.1",
      "base/5/16384_fsm",
      "base/5/16384_vm",
      "base/5/16384_init",
      "base/5/16384_fsm.2",
    ])
      expect(isBlockMapped("base", path), path).toBe(true);
    expect(isBlockMapped("16400", "PG_15_202209061/5/16401")).toBe(true);
    for (const path of [
      "global/pg_control",
      "global/pg_filenode.map",
      "base/5/PG_VERSION",
      "base/5/pg_filenode.map",
      "pg_xact/0000",
      "pg_multixact/offsets/0000",
      "base/16384",
      "base/x/1",
      "16384",
      "base/5/t3_16384",
      "pg_stat/1",
    ])
      expect(isBlockMapped("base", path), path).toBe(false);
    expect(isBlockMapped("16400", "PG_15_202209061/5/PG_VERSION")).toBe(false);
    expect(isBlockMapped("16400", "PG_15_202209061/16401")).toBe(false);
  });

  it("hash a block as the first 16 bytes of its sha256", () => {
    const bytes = Buffer.from("a block");
    expect(blockHash(bytes).toString("hex")).toBe(
      createHash("sha256").update(bytes).digest("hex").slice(0, 32),
    );
  });

  it("round-trip through base64 and are checked against the file size and the chain", () => {
    const hashes = Buffer.concat([blockHash(Buffer.from("a")), blockHash(Buffer.from("b"))]);
    const map = encodeBlockMap({ hashes, from: Uint8Array.from([0, 2]) });
    expect(map.size).toBe(8192);
    const entry: BackupFileEntry = {
      part: "base",
      path: "base/5/1",
      size: 8192 + 1,
      mode: 0o600,
      mtime: "",
      sha256: "",
      blocks: map,
    };
    const decoded = decodeBlockMap(entry, 3);
    expect(hashAt(decoded.hashes, 1).equals(blockHash(Buffer.from("b")))).toBe(true);
    expect([...decoded.from]).toEqual([0, 2]);
    expect(() => decodeBlockMap(entry, 2)).toThrow(IntegrityError); // names a backup past the chain
    expect(() => decodeBlockMap({ ...entry, size: 3 * 8192 }, 3)).toThrow(IntegrityError);
    expect(() => decodeBlockMap({ ...entry, blocks: undefined }, 3)).toThrow(IntegrityError);
  });
});

describe("BlockBits", () => {
  it("holds block numbers below its count, a bit each, like a Set of them (a number added twice once)", () => {
    const bits = new BlockBits(131_072);
    const set = new Set<number>();
    for (const b of [0, 7, 8, 9, 65_535, 131_071, 9]) {
      bits.add(b);
      set.add(b);
    }
    expect([...bits]).toEqual([...set].sort((a, b) => a - b));
    for (const b of [-1, 1, 6, 10, 131_070, 131_072, 0.5, Number.NaN])
      expect(bits.has(b)).toBe(false);
    for (const b of set) expect(bits.has(b)).toBe(true);
    expect(() => bits.add(131_072)).toThrow(RangeError);
    expect([...new BlockBits(0)]).toEqual([]);
  });
});
