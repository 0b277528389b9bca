/**
 * Metadata stored with every data object (S3 user metadata; the header line of a local
 * object): what the stored bytes decode to, so every read can be verified end to end.
 */
import type { CompressionAlgorithm } from "../compress/compression.js";
import { IntegrityError } from "../errors.js";

export interface ContentMeta {
  /** sha256 (hex) of the raw, uncompressed content. */
  sha256: string;
  /** Size of the raw content in bytes. */
  rawSize: number;
  compression: CompressionAlgorithm;
}

/**
 * `format` is the repository format the object belongs to (FORMAT.md): 2 for WAL under a
 * content-addressed key, which a reader of format 1 does not look for; 1 for the rest.
 * Readers accept both: the other fields mean the same.
 */
export function encodeContentMeta(meta: ContentMeta, format: 1 | 2 = 1): Record<string, string> {
  return {
    "pgha-format": String(format),
    "pgha-sha256": meta.sha256,
    "pgha-raw-size": String(meta.rawSize),
    "pgha-compression": meta.compression,
  };
}

export function decodeContentMeta(key: string, metadata: Record<string, string>): ContentMeta {
  const sha256 = metadata["pgha-sha256"] ?? "";
  const rawSize = Number(metadata["pgha-raw-size"]);
  const compression = metadata["pgha-compression"];
  if (
    !/^[0-9a-f]{64}$/.test(sha256) ||
    !Number.isSafeInteger(rawSize) ||
    rawSize < 0 ||
    (compression !== "zstd" && compression !== "none")
  ) {
    throw new IntegrityError(
      `${key} has missing or invalid pgha metadata`,
      "the object was not written by pgha, or its metadata was lost (copying objects without metadata drops it)",
    );
  }
  return { sha256, rawSize, compression };
}

/**
 * A WAL object's metadata: its content, and when pgha pushed it (`pgha-pushed-at`, the
 * pushing host's clock, which is the database's). Everything in a WAL file was written
 * before it was pushed, so the push time bounds every commit in it from above: the
 * restore planner refuses a target time at or after the push time of the newest segment
 * it can reach. Built here only, for wal-push and the asynchronous archiver alike.
 */
export function encodeWalMeta(
  meta: ContentMeta,
  pushedAt: Date,
  format: 1 | 2 = 1,
): Record<string, string> {
  return { ...encodeContentMeta(meta, format), "pgha-pushed-at": pushedAt.toISOString() };
}

/** When pgha pushed a WAL object; undefined for objects pushed before pgha recorded it. */
export function decodePushedAt(metadata: Record<string, string>): string | undefined {
  const text = metadata["pgha-pushed-at"];
  if (text === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text))
    return undefined;
  return Number.isNaN(Date.parse(text)) ? undefined : text;
}

export function sameContent(a: ContentMeta, b: ContentMeta): boolean {
  return a.sha256 === b.sha256 && a.rawSize === b.rawSize;
}
