/**
 * Compression streams. zstd-napi is synchronous native code; it is imported only when
 * compression is actually used.
 */
import { PassThrough, type Transform } from "node:stream";
import type { Compression, CompressionAlgorithm } from "./compression.js";

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
  const { Compressor } = await import("zstd-napi");
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: spec.level, checksumFlag: true });
  return compressor.compress(data);
}
