/**
 * Compression streams and one-shot buffers. zstd-napi is synchronous native code; it is
 * imported only when compression is actually used. The one-shot functions (the hot path
 * of wal-push and wal-fetch) load only its native binding, not its stream classes.
 */
import { PassThrough, type Transform } from "node:stream";
import type { Compression, CompressionAlgorithm } from "./compression.js";

type Binding = typeof import("zstd-napi/binding.js");

/** The native binding alone (a CommonJS module: its exports arrive as `default`). */
async function binding(): Promise<Binding> {
  const loaded = (await import("zstd-napi/binding.js")) as unknown as { default: Binding };
  return loaded.default;
}

/** workers > 0 lets libzstd compress in that many background threads (large streams). */
export async function compressStream(spec: Compression, workers = 0): Promise<Transform> {
  if (spec.algorithm === "none") return new PassThrough();
  const { CompressStream } = await import("zstd-napi");
  return new CompressStream({
    compressionLevel: spec.level,
    checksumFlag: true,
    nbWorkers: workers,
  });
}

export async function decompressStream(compression: CompressionAlgorithm): Promise<Transform> {
  if (compression === "none") return new PassThrough();
  const { DecompressStream } = await import("zstd-napi");
  return new DecompressStream();
}

/** One-shot compression of a buffer: a single zstd frame, the same format the stream writes. */
export async function compressBuffer(spec: Compression, data: Buffer): Promise<Buffer> {
  if (spec.algorithm === "none") return data;
  const zstd = await binding();
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.compressionLevel, spec.level);
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  const out = Buffer.allocUnsafe(zstd.compressBound(data.length));
  return out.subarray(0, cctx.compress2(out, data));
}

/**
 * One-shot decompression of stored bytes that should decode to exactly `rawSize` bytes.
 * Never allocates more than rawSize + 1 bytes, whatever the data claims; throws (a
 * zstd error) when the data is not zstd, is damaged, or decodes to more; returns the
 * decoded bytes, which the caller compares with rawSize and the checksum.
 */
export async function decompressBuffer(
  compression: CompressionAlgorithm,
  data: Buffer,
  rawSize: number,
): Promise<Buffer> {
  if (compression === "none") return data;
  const zstd = await binding();
  const out = Buffer.allocUnsafe(rawSize + 1);
  return out.subarray(0, new zstd.DCtx().decompress(out, data));
}
