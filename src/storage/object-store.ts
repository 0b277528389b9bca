/**
 * The ONE storage interface. Implementations: memory.ts (unit tests), fs.ts (local
 * directory, the embedded default), s3.ts (any S3-compatible store). All three pass
 * test/storage/conformance.ts; the contracts below are what that suite checks. What
 * differs between them is declared in `capabilities`, not assumed by callers.
 *
 * Stores do not retry. openStore() wraps every store in the ONE retry wrapper
 * (retrying-store.ts), which retries transient StorageErrors within --retry-timeout.
 *
 * Keys are relative, '/'-separated, made of [A-Za-z0-9._-] segments, with no empty,
 * '.' or '..' segment and no segment starting with ".tmp-" (reserved for in-flight
 * local writes) or ".pgha" (reserved for a store's own files, such as fs.ts's format
 * marker). Only src/repository/ builds keys.
 *
 * Metadata is a small string map (keys [a-z0-9-], printable ASCII values, at most
 * 2 KiB in all: the S3 limit) stored with the object and returned by head/get.
 */
import type { Readable } from "node:stream";
import { AlreadyExistsError, StorageError } from "../errors.js";

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

/** What put stored. */
export interface StoredObject extends ObjectInfo {
  /**
   * The store confirmed that it holds exactly the bytes it was given, so that reading the
   * object back (head) would add nothing about the body: memory keeps them; fs wrote and
   * fsynced them itself; S3 when the response's ETag is the MD5 of the body sent (a single
   * PUT stored without SSE-KMS or SSE-C; a multipart ETag is not an MD5 of the body).
   * Absent or false: only head can tell.
   */
  readonly verified?: boolean;
}

/** A file a writer that died left in a store (fs: the .tmp-* file of an interrupted put). */
export interface Leftover {
  /** Its path relative to the store's root ('/'-separated), for messages and deleteLeftover. */
  path: string;
  size: number;
  lastModified: Date;
}

/** A body to store: bytes in memory, or a stream read exactly once. */
export type PutBody = Uint8Array | Readable;

/** Runs one storage request with retries; `what` names it in messages ("PUT s3://b/k"). */
export type RequestRetry = <T>(what: string, request: () => Promise<T>) => Promise<T>;

export interface PutOptions {
  metadata?: Record<string, string>;
  /**
   * Store only if the key does not exist yet; otherwise throw AlreadyExistsError and
   * leave the existing object untouched. Local files use an atomic link(2); S3 checks
   * with HEAD first and also sends If-None-Match: * (atomic on AWS S3 and MinIO; a store
   * that ignores the header, such as s3rver, leaves a race window between HEAD and PUT).
   * Whether it is atomic is `capabilities.atomicIfAbsent`; wal-push does not rely on it
   * where it is not (content-addressed keys, src/wal/push.ts storeVersion).
   */
  ifAbsent?: boolean;
  /**
   * Set by the retry wrapper, not by callers. A put is the one operation that cannot be
   * retried from outside: a streamed body is read once. So a store whose put makes remote
   * requests (S3: HEAD, PutObject, or create/upload part/complete/abort of a multipart
   * upload) runs each request through this function, and a failed part is retried on its
   * own, with its own --retry-timeout budget. Without it every request is tried once.
   * Stores whose requests cannot fail transiently (fs, memory) ignore it.
   */
  retryRequest?: RequestRetry;
}

export interface ListOptions {
  /** Only keys after this one (in byte order): lets a listing resume where it stopped. */
  after?: string;
}

/** Whether a store honours a guarantee: "unknown" when it depends on the server behind it. */
export type Honoured = boolean | "unknown";

/**
 * What a store guarantees beyond the common contract. Code that depends on one of these
 * checks it here (and treats "unknown" as "no") instead of assuming it.
 */
export interface StoreCapabilities {
  /**
   * put(ifAbsent) is atomic: of concurrent puts of one key exactly one succeeds and the
   * others throw AlreadyExistsError. fs: link(2) fails atomically on an existing name;
   * memory: one map. S3: "unknown": If-None-Match: * is honoured by AWS S3, MinIO and Ceph
   * RGW but ignored by others (s3rver), which cannot be known without a probe
   * (learnCapabilities); until then the S3 stores check with a HEAD first, which leaves a
   * race window on servers that ignore the header.
   */
  readonly atomicIfAbsent: Honoured;
  /**
   * put without ifAbsent replaces an existing object atomically: a reader sees the old or
   * the new object, never a mix. fs: rename(2); memory: one map. S3: "unknown": AWS S3
   * and MinIO do, s3rver writes the file in place.
   */
  readonly atomicReplace: Honoured;
  /**
   * An object that can be read is durable: it survives a crash of this machine. S3: an
   * object is visible only once the server acknowledged storing it; memory: nothing
   * survives anyway. fs: false: a writer may have died between rename/link and the
   * directory fsync, so durable(key) must make sure.
   */
  readonly durableWhenVisible: boolean;
}

export interface ObjectStore {
  /** Where the store points, for messages: file:///var/lib/pgha or s3://bucket/prefix. */
  readonly url: string;

  readonly capabilities: StoreCapabilities;

  /** Size and metadata, or undefined when the key does not exist. Never throws NotFound. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /**
   * The object's info and a stream of its body. Throws NotFoundError when the key does
   * not exist. The caller must consume or destroy the stream.
   */
  get(key: string): Promise<{ info: ObjectInfo; body: Readable }>;

  /**
   * Optional: the object's body from byte `from` on (0 < from < size), for a download
   * that goes on where it broke (retrying-store.ts resumingGet). `info.size` is the whole
   * object's; `start` is where the body begins: `from`, or 0 where the server ignored the
   * range. Left out by stores that cannot (an encryption wrapper: the bytes its reader
   * counts are not the stored ones) and by test stores, which then read from the start.
   */
  getFrom?(key: string, from: number): Promise<{ info: ObjectInfo; body: Readable; start: number }>;

  /**
   * Stores the body under key, all-or-nothing: once put resolves the whole object is
   * durable (local: fsynced and renamed into place, directory fsynced; S3: the store
   * acknowledged it, with Content-MD5 or the SDK's checksum verified server-side);
   * when it rejects, no partial object is visible under key. A stream body is read
   * once, in parts of bounded size: memory use does not grow with the body.
   * Without ifAbsent an existing object is replaced.
   */
  put(key: string, body: PutBody, options?: PutOptions): Promise<StoredObject>;

  /**
   * Every object whose key starts with prefix (a plain string prefix, not a folder),
   * in ascending byte order of key, with the size of its body. Metadata is not
   * included: use head.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ListEntry>;

  /**
   * Makes sure an existing object survives a crash of this machine: local files are
   * fsynced with their directory (a writer may have died between rename and fsync).
   * Has nothing to do where capabilities.durableWhenVisible.
   */
  durable(key: string): Promise<void>;

  /** Removes the key. Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;

  /**
   * Only stores whose writers leave files behind when they die have these (fs: the .tmp-*
   * file put writes before renaming it into place; an S3 object is never visible partly
   * written). listLeftovers: such files in the directories of keys starting with `prefix`,
   * last modified before `before` (the caller picks a time no live writer can be that
   * idle); deleteLeftover removes one of them (gone already is not an error).
   */
  listLeftovers?(prefix: string, before: Date): Promise<Leftover[]>;
  deleteLeftover?(leftover: Leftover): Promise<void>;

  /**
   * Only stores with capabilities that depend on the server behind them (S3) have this.
   * Finds out such a capability by trying, writing only `probeKey` (a key the caller
   * reserves for probes; S3: atomicIfAbsent, by conditional PUTs of it, see
   * probeAtomicIfAbsent); or, given `known` (what an earlier probe of the same repository
   * found, kept by the caller), takes that without a request. From then on the store
   * relies on it and `capabilities` says so. Resolves to what it learned.
   */
  learnCapabilities?(
    probeKey: string,
    known?: Partial<StoreCapabilities>,
  ): Promise<Partial<StoreCapabilities>>;

  /**
   * Only the encryption wrappers (encrypting-store.ts, plain-guard.ts): whether the
   * repository is marked encrypted (its marker object exists), found out once per process
   * before the first write of an object that is not plain, or taken from `known` (what an
   * earlier run found, kept by the caller: wal-push's repo facts). Resolves to it.
   */
  encryptionMarker?(known?: boolean): Promise<boolean>;

  /**
   * Only stores that change bodies on the way (encrypting-store.ts): whether an object that
   * lists with `listedSize` bytes can hold a body of `bodySize` bytes as put was given it.
   * Absent: the sizes are equal (sizeFits).
   */
  listedSizeFits?(listedSize: number, bodySize: number): boolean;
}

/** Whether a listed size is that of a body of `bodySize` bytes as given to put. */
export function sizeFits(store: ObjectStore, listedSize: number, bodySize: number): boolean {
  return store.listedSizeFits
    ? store.listedSizeFits(listedSize, bodySize)
    : listedSize === bodySize;
}

/** What a probe of conditional writes stores. */
export const PROBE_BODY = Buffer.from("pgha probe of conditional writes (If-None-Match: *)\n");

/**
 * Whether a server honours a conditional create (S3's If-None-Match: *), found with at most
 * two conditional puts of one probe key: a refusal (AlreadyExistsError) at either means it
 * does (the key existed, from an earlier probe or the first put); two successes mean the
 * second overwrote the first, so it does not. Concurrent probes of the same key answer
 * the same. `putIfAbsent` must send the condition as it is, without a HEAD first.
 * A server that refuses honours the condition; how atomic its check is under concurrent
 * writers is its own (AWS S3 and MinIO: atomic).
 */
export async function probeAtomicIfAbsent(putIfAbsent: () => Promise<unknown>): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await putIfAbsent();
    } catch (error) {
      if (error instanceof AlreadyExistsError) return true;
      throw error;
    }
  }
  return false;
}

/**
 * learnCapabilities of a store that probes with a conditional PUT: what an earlier probe of
 * the repository recorded (`known`) is taken as it is; otherwise the probe decides, while
 * the store does not know yet. Undefined: nothing to learn.
 */
export async function learnAtomicIfAbsent(
  current: StoreCapabilities,
  known: Partial<StoreCapabilities> | undefined,
  putIfAbsent: () => Promise<unknown>,
): Promise<Honoured | undefined> {
  if (known?.atomicIfAbsent !== undefined) return known.atomicIfAbsent;
  if (current.atomicIfAbsent !== "unknown") return undefined;
  return probeAtomicIfAbsent(putIfAbsent);
}

const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Throws unless key follows the key rules above (this is what keeps fs.ts inside its root). */
export function assertValidKey(key: string): void {
  const segments = key.split("/");
  const ok = segments.every(
    (s) =>
      KEY_SEGMENT.test(s) &&
      s !== "." &&
      s !== ".." &&
      !s.startsWith(".tmp-") &&
      !s.startsWith(".pgha"),
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

/** Code units whose UTF-16 order differs from their UTF-8 byte order (surrogates, U+E000-U+FFFF). */
const WIDE = /[\uD800-\uFFFF]/;

/** Ascending byte order of keys: the order list yields them in (the order S3 lists in). */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  // String order is UTF-8 byte order unless a surrogate meets U+E000-U+FFFF.
  if (WIDE.test(a) || WIDE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : 1;
}

/**
 * put(ifAbsent) on a store where If-None-Match is not known to be honoured: a HEAD first
 * turns the common case (the name exists) into AlreadyExistsError; a race between two
 * writers remains, which is why wal-push then uses content-addressed names.
 */
export async function refuseIfPresent(
  key: string,
  options: PutOptions,
  capabilities: StoreCapabilities,
  exists: () => Promise<unknown>,
): Promise<void> {
  if (options.ifAbsent && capabilities.atomicIfAbsent !== true && (await exists())) {
    throw new AlreadyExistsError(key);
  }
}
