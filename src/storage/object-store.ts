/**
 * The ONE storage interface. Implementations: memory.ts (unit tests), fs.ts (local
 * directory, the embedded default), s3.ts (any S3-compatible store). All three pass
 * test/storage/conformance.ts; the contracts below are what that suite checks.
 *
 * Keys are relative, '/'-separated, made of [A-Za-z0-9._-] segments, with no empty,
 * '.' or '..' segment and no segment starting with ".tmp-" (reserved for in-flight
 * local writes). Only src/repository/ builds keys.
 *
 * Metadata is a small string map (keys [a-z0-9-], printable ASCII values, at most
 * 2 KiB in all: the S3 limit) stored with the object and returned by head/get.
 */
import type { Readable } from "node:stream";
import { StorageError } from "../errors.js";

export interface ObjectInfo {
  key: string;
  /** Size of the stored body in bytes (not counting metadata). */
  size: number;
  metadata: Record<string, string>;
}

export interface ListEntry {
  key: string;
  size: number;
  lastModified: Date | undefined;
}

/** A body to store: bytes in memory, or a stream read exactly once. */
export type PutBody = Uint8Array | Readable;

export interface PutOptions {
  metadata?: Record<string, string>;
  /**
   * Store only if the key does not exist yet; otherwise throw AlreadyExistsError and
   * leave the existing object untouched. Local files use an atomic link(2); S3 checks
   * with HEAD first and also sends If-None-Match: * (atomic on AWS S3 and MinIO; a store
   * that ignores the header, such as s3rver, leaves a race window between HEAD and PUT).
   */
  ifAbsent?: boolean;
}

export interface ObjectStore {
  /** Where the store points, for messages: file:///var/lib/pgha or s3://bucket/prefix. */
  readonly url: string;

  /** Size and metadata, or undefined when the key does not exist. Never throws NotFound. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /**
   * The object's info and a stream of its body. Throws NotFoundError when the key does
   * not exist. The caller must consume or destroy the stream.
   */
  get(key: string): Promise<{ info: ObjectInfo; body: Readable }>;

  /**
   * Stores the body under key, all-or-nothing: once put resolves the whole object is
   * durable (local: fsynced and renamed into place, directory fsynced; S3: the store
   * acknowledged it, with Content-MD5 or the SDK's checksum verified server-side);
   * when it rejects, no partial object is visible under key. A stream body is read
   * once, in parts of bounded size: memory use does not grow with the body.
   * Without ifAbsent an existing object is replaced.
   */
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo>;

  /**
   * Every object whose key starts with prefix (a plain string prefix, not a folder),
   * in ascending byte order of key. Metadata is not included: use head.
   */
  list(prefix: string): AsyncIterable<ListEntry>;

  /**
   * Makes sure an existing object survives a crash of this machine: local files are
   * fsynced with their directory (a writer may have died between rename and fsync);
   * on S3 an acknowledged object already is durable.
   */
  durable(key: string): Promise<void>;

  /** Removes the key. Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
}

const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Throws unless key follows the key rules above (this is what keeps fs.ts inside its root). */
export function assertValidKey(key: string): void {
  const segments = key.split("/");
  const ok = segments.every(
    (s) => KEY_SEGMENT.test(s) && s !== "." && s !== ".." && !s.startsWith(".tmp-"),
  );
  if (!ok || key.length > 1024) {
    throw new StorageError(`invalid object key '${key}'`, { transient: false });
  }
}

export function assertValidMetadata(metadata: Record<string, string>): void {
  let total = 0;
  for (const [name, value] of Object.entries(metadata)) {
    if (!/^[a-z0-9-]+$/.test(name) || !/^[\x20-\x7e]*$/.test(value)) {
      throw new StorageError(`invalid metadata ${name}=${value}`, { transient: false });
    }
    total += name.length + value.length;
  }
  if (total > 2048) throw new StorageError("metadata larger than 2 KiB", { transient: false });
}
