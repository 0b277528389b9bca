/** Seekable compression of bundles (compress/frames.ts): frames, their index, its checks. */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  FRAME_RAW_BYTES,
  FramedCompressor,
  frameBytesFor,
  framesOf,
} from "../../src/compress/frames.js";
import { MT_JOB_BYTES, SyncCompressor } from "../../src/compress/zstd-sync.js";

const require = createRequire(import.meta.url);
const zstd = require("zstd-napi") as { decompress(input: Uint8Array): Buffer };

/** Text-like bytes: compressible, but not to nothing. */
function sample(length: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 64 < length; i++)
    out.push(
      Buffer.from(
        createHash("sha256")
          .update(String(i % 97))
          .digest("hex"),
      ),
    );
  return Buffer.concat(out).subarray(0, length);
}

async function compress(input: Buffer, raw: number, pieces = 7) {
  const framed = new FramedCompressor(await SyncCompressor.create({ level: 3, threads: 0 }), raw);
  const out: Buffer[] = [];
  const emit = (chunk: Buffer) => {
    out.push(Buffer.from(chunk));
  };
  // Written in pieces that do not line up with the frames.
  const step = Math.ceil(input.length / pieces);
  for (let at = 0; at < input.length; at += step) framed.write(input.subarray(at, at + step), emit);
  framed.end(emit);
  const stored = Buffer.concat(out);
  return { stored, index: framed.index() };
}

describe("FramedCompressor", () => {
  it("writes one zstd stream of frames of `raw` bytes each, listed with their stored sizes", async () => {
    const input = sample(5 * 10_000 + 123);
    const { stored, index } = await compress(input, 10_000);
    // Any zstd reader reads the whole object as before.
    expect(zstd.decompress(stored).equals(input)).toBe(true);
    const object = {
      compression: "zstd",
      rawSize: input.length,
      storedSize: stored.length,
      frames: index,
    };
    const frames = framesOf(object);
    expect(frames?.map((f) => f.raw)).toEqual([10_000, 10_000, 10_000, 10_000, 10_000, 123]);
    // Each frame alone decompresses to its own bytes.
    let at = 0;
    let rawAt = 0;
    for (const frame of frames ?? []) {
      const bytes = zstd.decompress(stored.subarray(at, at + frame.stored));
      expect(bytes.equals(input.subarray(rawAt, rawAt + frame.raw))).toBe(true);
      at += frame.stored;
      rawAt += frame.raw;
    }
    expect(at).toBe(stored.length);
  });

  it("ends no empty frame when the input is a multiple of the frame size", async () => {
    const input = sample(3 * 4096);
    const { stored, index } = await compress(input, 4096, 3);
    const frames = framesOf({
      compression: "zstd",
      rawSize: input.length,
      storedSize: stored.length,
      frames: index,
    });
    expect(frames).toHaveLength(3);
    expect(zstd.decompress(stored).equals(input)).toBe(true);
  });

  it("uses 128 KiB frames by default", async () => {
    const framed = new FramedCompressor(await SyncCompressor.create({ level: 1, threads: 0 }));
    framed.write(sample(FRAME_RAW_BYTES * 2 + 1), () => undefined);
    framed.end(() => undefined);
    expect(framed.index().raw).toBe(128 * 1024);
    expect(Buffer.from(framed.index().sizes, "base64").length).toBe(3 * 4);
  });
});

describe("framesOf", () => {
  const sizes = (...n: number[]) => {
    const b = Buffer.alloc(n.length * 4);
    for (const [i, v] of n.entries()) b.writeUInt32LE(v, i * 4);
    return b.toString("base64");
  };
  const object = { compression: "zstd", rawSize: 250, storedSize: 60 };

  it("gives the frames of an index that adds up to the object", () => {
    expect(framesOf({ ...object, frames: { raw: 100, sizes: sizes(20, 30, 10) } })).toEqual([
      { stored: 20, raw: 100 },
      { stored: 30, raw: 100 },
      { stored: 10, raw: 50 },
    ]);
  });

  it("gives none (the object is read whole) for an index that does not add up, or none at all", () => {
    expect(framesOf(object)).toBeNull();
    expect(
      framesOf({ ...object, compression: "none", frames: { raw: 100, sizes: sizes(20, 30, 10) } }),
    ).toBeNull();
    expect(framesOf({ ...object, frames: { raw: 100, sizes: sizes(20, 40) } })).toBeNull();
    expect(framesOf({ ...object, frames: { raw: 100, sizes: sizes(20, 30, 11) } })).toBeNull();
    expect(framesOf({ ...object, frames: { raw: 100, sizes: sizes(20, 40, 0) } })).toBeNull();
    expect(framesOf({ ...object, frames: { raw: 0, sizes: sizes(60) } })).toBeNull();
    expect(framesOf({ ...object, frames: { raw: 100, sizes: "AAA" } })).toBeNull();
  });
});

describe("frames with libzstd's own threads", () => {
  it("are large enough to give each thread a job, and read back the same", async () => {
    expect(frameBytesFor(0)).toBe(FRAME_RAW_BYTES);
    expect(frameBytesFor(3)).toBe(4 * MT_JOB_BYTES);
    const zstdMt = await SyncCompressor.create({ level: 3, threads: 2 });
    const framed = new FramedCompressor(zstdMt, frameBytesFor(2));
    const input = sample(5 * MT_JOB_BYTES + 999);
    const out: Buffer[] = [];
    const emit = (chunk: Buffer) => {
      out.push(Buffer.from(chunk));
    };
    framed.write(input, emit);
    framed.end(emit);
    const stored = Buffer.concat(out);
    expect(zstd.decompress(stored).equals(input)).toBe(true);
    const frames = framesOf({
      compression: "zstd",
      rawSize: input.length,
      storedSize: stored.length,
      frames: framed.index(),
    });
    expect(frames?.map((f) => f.raw)).toEqual([3 * MT_JOB_BYTES, 2 * MT_JOB_BYTES + 999]);
  });
});
