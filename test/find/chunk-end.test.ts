/** Where a chunk's pg_waldump run stops: just after the record crossing into the next segment. */
import { describe, expect, it } from "vitest";
import { chunkEnd } from "../../src/find/scan-wal.js";

const SEG = 16 * 1024 * 1024;

/** A long page header (XLogLongPageHeaderData) as PostgreSQL 15 writes it. */
function header(pageAddr: bigint, info: number, remLen: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt16LE(0xd110, 0); // xlp_magic
  b.writeUInt16LE(info, 2);
  b.writeUInt32LE(1, 4); // xlp_tli
  b.writeBigUInt64LE(pageAddr, 8);
  b.writeUInt32LE(remLen, 16);
  b.writeUInt32LE(SEG, 32); // xlp_seg_size
  b.writeUInt32LE(8192, 36); // xlp_xlog_blcksz
  return b;
}

describe("chunkEnd", () => {
  const start = 0x14000000n;

  it("ends with the page where a record's rest ends", () => {
    // Taken from real pgbench WAL: 5813 bytes continued; the next record is at 0/140016E0.
    expect(chunkEnd(start, header(start, 0x0007, 5813), SEG)).toBe(start + 8192n);
    // 8152 bytes fill the first page exactly.
    expect(chunkEnd(start, header(start, 0x0007, 8152), SEG)).toBe(start + 8192n);
    expect(chunkEnd(start, header(start, 0x0007, 8153), SEG)).toBe(start + 16384n);
  });

  it("counts the page headers of a rest that spans pages", () => {
    // 8152 bytes on the first page, 8168 on the second, 3680 on the third: it ends at 20088.
    expect(chunkEnd(start, header(start, 0x0007, 20000), SEG)).toBe(start + 24576n);
    expect(chunkEnd(start, header(start, 0x0007, 8152 + 8168), SEG)).toBe(start + 16384n);
  });

  it("stops after the first page when no record crosses into the segment", () => {
    expect(chunkEnd(start, header(start, 0x0006, 0), SEG)).toBe(start + 8192n);
    expect(chunkEnd(start, header(start, 0x0006, 20000), SEG)).toBe(start + 8192n);
  });

  it("reads the whole segment for a header it cannot vouch for or a rest past the segment", () => {
    expect(chunkEnd(start, header(0x13000000n, 0x0007, 5813), SEG)).toBe(start + BigInt(SEG));
    expect(chunkEnd(start, Buffer.alloc(12), SEG)).toBe(start + BigInt(SEG));
    expect(chunkEnd(start, header(start, 0x0007, SEG + 100), SEG)).toBe(start + BigInt(SEG));
  });
});
