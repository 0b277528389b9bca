/** The workers' zstd (compress/zstd-sync.ts): contexts given back and reused safely. */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { SyncCompressor, SyncDecompressor } from "../../src/compress/zstd-sync.js";

const require = createRequire(import.meta.url);
const zstd = require("zstd-napi") as {
  compress(input: Uint8Array): Buffer;
  decompress(input: Uint8Array): Buffer;
};

function text(seed: string, length: number): Buffer {
  return Buffer.from(seed.repeat(Math.ceil(length / seed.length)).slice(0, length));
}

async function compressWhole(compressor: SyncCompressor, input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const emit = (chunk: Buffer) => {
    out.push(Buffer.from(chunk));
  };
  compressor.write(input, emit);
  compressor.end(emit);
  return Buffer.concat(out);
}

/** The native context a compressor or decompressor holds (private: what reuse is about). */
function contextOf(coder: SyncCompressor | SyncDecompressor): unknown {
  return (
    (coder as unknown as { cctx?: unknown; dctx?: unknown }).cctx ??
    (coder as unknown as { dctx?: unknown }).dctx
  );
}

describe("SyncCompressor contexts", () => {
  it("reuses a released context, and a frame abandoned in it leaves nothing in the next", async () => {
    const first = await SyncCompressor.create({ level: 3, threads: 0 });
    // A frame begun and never ended (a bundle that failed half-way).
    first.write(text("abandoned ", 300_000), () => {});
    first.release();
    const second = await SyncCompressor.create({ level: 3, threads: 0 });
    expect(contextOf(second)).toBe(contextOf(first));
    const input = text("kept ", 200_000);
    expect(zstd.decompress(await compressWhole(second, input)).equals(input)).toBe(true);
    second.release();
  });

  it("keeps contexts of other parameters apart", async () => {
    const level3 = await SyncCompressor.create({ level: 3, threads: 0 });
    level3.release();
    const level9 = await SyncCompressor.create({ level: 9, threads: 0 });
    expect(contextOf(level9)).not.toBe(contextOf(level3));
    level9.release();
  });

  it("refuses to be written after its release", async () => {
    const compressor = await SyncCompressor.create({ level: 3, threads: 0 });
    compressor.release();
    compressor.release(); // twice is once
    expect(() => compressor.write(Buffer.from("x"), () => {})).toThrow(/released/);
    expect(() => compressor.endFrame(() => {})).toThrow(/released/);
    // Given back once only: two new compressors do not share the context.
    const a = await SyncCompressor.create({ level: 3, threads: 0 });
    const b = await SyncCompressor.create({ level: 3, threads: 0 });
    expect(contextOf(a)).not.toBe(contextOf(b));
    a.release();
    b.release();
  });
});

describe("SyncDecompressor contexts", () => {
  it("reuses a released context, and a frame abandoned in it leaves nothing in the next", async () => {
    const big = zstd.compress(text("first frame ", 1_000_000));
    const first = await SyncDecompressor.create();
    await first.write(big.subarray(0, big.length >> 1), async () => {});
    expect(first.atFrameEnd).toBe(false);
    first.release();
    const second = await SyncDecompressor.create();
    expect(contextOf(second)).toBe(contextOf(first));
    const input = text("second ", 300_000);
    const out: Buffer[] = [];
    await second.write(zstd.compress(input), async (bytes) => {
      out.push(Buffer.from(bytes));
    });
    second.end();
    expect(Buffer.concat(out).equals(input)).toBe(true);
    second.release();
    await expect(second.write(big, async () => {})).rejects.toThrow(/released/);
  });
});
