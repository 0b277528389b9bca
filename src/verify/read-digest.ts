/**
 * Reads one object through and hashes it: the stored bytes, and (when it is compressed
 * data to check) the decompressed ones. Nothing is kept in memory or written anywhere.
 */
import { createHash } from "node:crypto";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decompressStream } from "../compress/codec.js";
import type { CompressionAlgorithm } from "../compress/compression.js";
import { NotFoundError, PghaError, StorageError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { ChangedWhileReadError, resumingGet } from "../storage/retrying-store.js";
import { readFailure } from "../storage/streams.js";

/** Raw bytes kept from the start of a decompressed object (a WAL segment's long page header). */
export const HEAD_BYTES = 64;

export interface Digest {
  metadata: Record<string, string>;
  storedSize: number;
  storedSha256: string;
  /** Present when the object was decompressed; `head`: its first bytes (up to HEAD_BYTES). */
  raw?: { size: number; sha256: string; head: Buffer };
}

type Decompress =
  | CompressionAlgorithm
  | ((metadata: Record<string, string>) => CompressionAlgorithm)
  | undefined;
type DigestResult = Digest | "missing" | { undecodable: string } | { unreadable: string };

/**
 * The object's digest; "missing" when it is not there; "undecodable" (with zstd's words)
 * when its bytes do not decompress; "unreadable" when the store finds the object damaged
 * (a StorageError marked damaged: a local file's corrupt header). A failing store
 * throws, and so does `decompress` when it cannot tell from the metadata (an IntegrityError).
 */
export async function readDigest(
  store: ObjectStore,
  key: string,
  decompress: Decompress,
): Promise<DigestResult> {
  let got: Awaited<ReturnType<typeof resumingGet>>;
  try {
    // A body that breaks off (a reset) goes on where it broke, within the budget counted
    // from the last byte read (a bundle of gigabytes may take longer than the budget).
    got = await resumingGet(store, key);
  } catch (error) {
    if (error instanceof NotFoundError) return "missing";
    if (error instanceof StorageError && error.damaged) return { unreadable: error.message };
    throw error;
  }
  const { info } = got;
  const body = Readable.from(got.chunks, { objectMode: false });
  // The body's own failure (a reset) is the store's, never the data's: noted before any
  // await, since pipeline passes it on to the decoder, whose error would read as bad data.
  let broken: Error | undefined;
  body.once("error", (error: Error) => {
    broken = error;
  });
  const stored = createHash("sha256");
  let storedSize = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      stored.update(chunk);
      storedSize += chunk.length;
      callback(null, chunk);
    },
  });
  const raw = createHash("sha256");
  let rawSize = 0;
  let head = Buffer.alloc(0);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.update(chunk);
      if (head.length < HEAD_BYTES)
        head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
      rawSize += chunk.length;
      callback();
    },
  });
  let compression: CompressionAlgorithm | undefined;
  try {
    compression = typeof decompress === "function" ? decompress(info.metadata) : decompress;
  } catch (error) {
    body.destroy();
    throw error;
  }
  let decodeFailed = false;
  try {
    if (compression === undefined) await pipeline(body, tap, sink);
    else {
      const decoder = await decompressStream(compression);
      decoder.once("error", () => {
        decodeFailed = true;
      });
      await pipeline(body, tap, decoder, sink);
    }
  } catch (error) {
    if (broken instanceof NotFoundError) return "missing"; // it went after the first GET
    // Rewritten under its key (never by pgha): damaged, as a corrupt header is.
    if (broken instanceof ChangedWhileReadError) return { unreadable: broken.message };
    // The store's failure (past the retries: a StorageError) or a raw one; an encrypted
    // body that failed authentication (an IntegrityError) is the data's.
    if (broken instanceof StorageError || (broken !== undefined && !(broken instanceof PghaError)))
      throw readFailure(`${store.url}/${key}`, broken);
    if (decodeFailed) return { undecodable: (error as Error).message };
    throw readFailure(`${store.url}/${key}`, error);
  }
  return {
    metadata: info.metadata,
    storedSize,
    storedSha256: stored.digest("hex"),
    ...(compression === undefined
      ? {}
      : { raw: { size: rawSize, sha256: raw.digest("hex"), head } }),
  };
}
