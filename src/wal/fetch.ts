/**
 * fetchWalFile: deliver ONE archived WAL file to the path PostgreSQL asked for.
 *
 * Guarantees:
 * - a name not in the repository throws NotFoundError after two lookups (its plain key,
 *   then a listing of its content-addressed keys, see versions.ts); a name stored with two
 *   different contents throws WalConflictError naming both, never picks one;
 * - the body is decompressed, its sha256 and size are checked against the object's
 *   metadata, and it is written into a temporary file beside dest, fsynced and renamed
 *   onto dest, and the directory is fsynced: PostgreSQL never sees a partial or corrupt
 *   file. Files up to IN_MEMORY_LIMIT (every 16 MiB segment) are decompressed in one call
 *   and checked before anything is written; larger ones are streamed through the checks
 *   into the temporary file, which is renamed only once they passed;
 * - on any failure the temporary file is removed and dest is left as it was;
 * - a transient storage failure, also in the middle of the body, restarts the download
 *   within the store's retry budget (retryAsWhole: the download is retried as a whole,
 *   the requests inside it are not retried a second time).
 */
import { createHash, randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decompressBuffer, decompressStream } from "../compress/codec.js";
import {
  describeSystemError,
  IntegrityError,
  LocalIoError,
  NotFoundError,
  PghaError,
  RefusedError,
  StorageError,
} from "../errors.js";
import { syncDirectory, writeAll } from "../local-files.js";
import type { Logger } from "../log.js";
import { identityKey, walKey } from "../repository/keys.js";
import { type ContentMeta, decodeContentMeta } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { retryAsWhole } from "../storage/retrying-store.js";
import { readAll, readFailure } from "../storage/streams.js";
import { parseWalFileName, type WalFileName } from "./names.js";
import { checkSegmentHeader, LONG_PAGE_HEADER_SIZE } from "./page-header.js";
import { conflictError, contentsOf, listWalVersions } from "./versions.js";

export interface FetchDeps {
  store: ObjectStore;
  cluster: string;
  log: Logger;
  /** Files up to this size are checked in memory, larger ones streamed (tests lower it). */
  inMemoryLimit?: number;
  /**
   * false: no fsync of the file and its directory (still checked, still renamed into
   * place): for scratch copies that are deleted after reading (restore find). Default true.
   */
  durable?: boolean;
  /**
   * What a long-running caller (the prefetcher) learned about the repository's WAL layout,
   * shared by its fetches: once a name was found only under a content-addressed key, later
   * fetches list first (LIST + GET) instead of trying the plain key (GET + LIST + GET).
   */
  layout?: { listFirst: boolean };
}

export interface FetchOutcome {
  name: string;
  key: string;
  rawSize: number;
  dest: string;
}

export async function fetchWalFile(
  deps: FetchDeps,
  name: string,
  dest: string,
): Promise<FetchOutcome> {
  const file = parseWalFileName(name);
  if (!file || name !== basename(name)) {
    throw new RefusedError(
      `'${name}' is not a WAL file name`,
      "restore_command should be 'pgha wal-fetch %f %p'",
    );
  }
  let fetched: { key: string; rawSize: number };
  try {
    fetched = await retryAsWhole(deps.store, `fetch ${name}`, (store) =>
      fetchEitherLayout({ ...deps, store }, file, dest),
    );
  } catch (error) {
    if (error instanceof NotFoundError) await checkClusterExists(deps);
    throw error;
  }
  const { key, rawSize } = fetched;
  deps.log.debug(`restored ${name} (${rawSize} bytes) from ${deps.store.url}/${key} to ${dest}`);
  return { name, key, rawSize, dest };
}

/**
 * The plain key first (one GET where pushes use it); when it is not there, the name's
 * content-addressed keys (versions.ts): one is fetched, two with different content are a
 * conflict that is refused, naming both, rather than a choice made silently.
 */
async function fetchEitherLayout(
  deps: FetchDeps,
  file: WalFileName,
  dest: string,
): Promise<{ key: string; rawSize: number }> {
  const plain = walKey(deps.cluster, file);
  if (!deps.layout?.listFirst) {
    try {
      return { key: plain, rawSize: await download(deps, file, plain, dest) };
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  // The listing of the plain key as a prefix holds the plain key too.
  const versions = await listWalVersions(deps.store, deps.cluster, file);
  if (deps.layout && versions.length > 0) {
    deps.layout.listFirst = versions.every((v) => v.sha256 !== undefined);
  }
  const groups = await contentsOf(deps.store, versions);
  if (groups.size > 1) {
    throw conflictError(deps.store, file.name, groups, "wal-fetch does not choose between them");
  }
  const [version] = [...groups.values()].flat();
  if (!version) throw new NotFoundError(`${file.name} is not in ${deps.store.url}`);
  const rawSize = await download(deps, file, version.key, dest, version.sha256 || undefined);
  return { key: version.key, rawSize };
}

/** Files up to this size (as stored, and decoded) are checked in memory before they are written. */
const IN_MEMORY_LIMIT = 64 << 20;

async function download(
  deps: FetchDeps,
  file: WalFileName,
  key: string,
  dest: string,
  sha256?: string,
): Promise<number> {
  const { info, body } = await deps.store.get(key);
  let meta: ContentMeta;
  try {
    meta = decodeContentMeta(key, info.metadata);
    if (sha256 !== undefined && meta.sha256 !== sha256) {
      throw new IntegrityError(
        `${deps.store.url}/${key} has metadata of other content (sha256 ${meta.sha256.slice(0, 12)}…) than its name says`,
      );
    }
  } catch (error) {
    body.destroy();
    throw error;
  }
  const limit = deps.inMemoryLimit ?? IN_MEMORY_LIMIT;
  if (meta.rawSize <= limit && info.size <= limit) {
    return deliverInMemory(deps, file, key, dest, meta, body);
  }
  return deliverStreamed(deps, file, key, dest, meta, body);
}

/** Reads the whole body, decompresses it in one call, checks it, and only then writes it. */
async function deliverInMemory(
  deps: FetchDeps,
  file: WalFileName,
  key: string,
  dest: string,
  meta: ContentMeta,
  body: Readable,
): Promise<number> {
  let stored: Buffer;
  try {
    stored = await readAll(body);
  } catch (error) {
    throw asFetchError(error, key, deps.store.url);
  }
  let raw: Buffer;
  try {
    raw = await decompressBuffer(meta.compression, stored, meta.rawSize);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new IntegrityError(`${deps.store.url}/${key} is corrupt: cannot decompress (${why})`);
  }
  if (raw.length > meta.rawSize) {
    throw new IntegrityError(
      `${deps.store.url}/${key} decodes to more than its recorded ${meta.rawSize} bytes`,
    );
  }
  checkContent(deps, key, meta, raw.length, createHash("sha256").update(raw).digest("hex"));
  checkIsNamedSegment(deps, file, key, raw.subarray(0, LONG_PAGE_HEADER_SIZE), raw.length);
  const tmp = temporaryBeside(dest);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, "wx", 0o600);
  } catch (error) {
    throw new LocalIoError(`cannot create ${tmp}: ${describeSystemError(error)}`, { cause: error });
  }
  let closed = false;
  try {
    await writeAll(handle, raw);
    if (deps.durable !== false) await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, dest);
    if (deps.durable !== false) await syncDirectory(dirname(dest));
    return raw.length;
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw new LocalIoError(`cannot write ${dest}: ${describeSystemError(error)}`, { cause: error });
  }
}

function temporaryBeside(dest: string): string {
  return join(dirname(dest), `.pgha-tmp-${basename(dest)}-${randomBytes(4).toString("hex")}`);
}

function checkContent(
  deps: FetchDeps,
  key: string,
  meta: ContentMeta,
  size: number,
  sha256: string,
): void {
  if (size !== meta.rawSize || sha256 !== meta.sha256) {
    throw new IntegrityError(
      `${deps.store.url}/${key} is corrupt: got ${size} bytes with sha256 ${sha256.slice(0, 12)}…, expected ${meta.rawSize} bytes with ${meta.sha256.slice(0, 12)}…`,
      "the archived copy is damaged; restore it from another copy of the repository if there is one",
    );
  }
}

/**
 * A segment's (or .partial's) long page header names its timeline and address: a body
 * that checks against its own metadata can still be another segment's, moved to this
 * name whole (object and metadata alike, which age authentication cannot tell: it binds
 * no key). Replaying it would apply the wrong WAL, so it is corrupt (exit 6).
 */
function checkIsNamedSegment(
  deps: FetchDeps,
  file: WalFileName,
  key: string,
  head: Uint8Array,
  size: number,
): void {
  if (file.kind !== "segment" && file.kind !== "partial") return;
  try {
    checkSegmentHeader(file, head, size);
  } catch (error) {
    if (!(error instanceof RefusedError)) throw error;
    throw new IntegrityError(
      `${deps.store.url}/${key} holds another WAL file than its name says: ${error.message}`,
      "the object was moved or replaced in the repository; restore it from another copy of the repository if there is one",
    );
  }
}

/** Streams the body through decompression and checks into the temporary file. */
async function deliverStreamed(
  deps: FetchDeps,
  file: WalFileName,
  key: string,
  dest: string,
  meta: ContentMeta,
  body: Readable,
): Promise<number> {
  const tmp = temporaryBeside(dest);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, "wx", 0o600);
  } catch (error) {
    body.destroy();
    throw new LocalIoError(`cannot create ${tmp}: ${describeSystemError(error)}`, { cause: error });
  }
  const hash = createHash("sha256");
  let size = 0;
  let head = Buffer.alloc(0);
  let closed = false;
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > meta.rawSize) {
          // Corrupt or hostile object: stop before it fills the disk.
          done(
            new IntegrityError(
              `${deps.store.url}/${key} decodes to more than its recorded ${meta.rawSize} bytes`,
            ),
          );
          return;
        }
        hash.update(chunk);
        if (head.length < LONG_PAGE_HEADER_SIZE) {
          head = Buffer.concat([head, chunk.subarray(0, LONG_PAGE_HEADER_SIZE - head.length)]);
        }
        writeAll(handle, chunk).then(() => done(), done);
      },
    });
    const decompress = await decompressStream(meta.compression);
    // pipeline() destroys every stream with the first error, so remember which stream
    // failed first: only the decompressor failing means bad data; a body error is the
    // connection (transient) and a sink error is local.
    let origin: "body" | "decompress" | "sink" | undefined;
    body.once("error", () => {
      origin ??= "body";
    });
    decompress.once("error", () => {
      origin ??= "decompress";
    });
    sink.once("error", () => {
      origin ??= "sink";
    });
    try {
      await pipeline(body, decompress, sink);
    } catch (error) {
      if (origin === "decompress") {
        const why = error instanceof Error ? error.message : String(error);
        throw new IntegrityError(`${deps.store.url}/${key} is corrupt: cannot decompress (${why})`);
      }
      if (origin === "sink" && !(error instanceof PghaError)) {
        throw new LocalIoError(`cannot write ${tmp}: ${describeSystemError(error)}`, {
          cause: error,
        });
      }
      throw asFetchError(error, key, deps.store.url);
    }
    checkContent(deps, key, meta, size, hash.digest("hex"));
    checkIsNamedSegment(deps, file, key, head, size);
    if (deps.durable !== false) await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, dest);
    if (deps.durable !== false) await syncDirectory(dirname(dest));
    return size;
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (error instanceof PghaError) throw error;
    throw new LocalIoError(`cannot write ${dest}: ${describeSystemError(error)}`, { cause: error });
  }
}

/**
 * "Not found" must mean the file is not archived, not that --repo or --cluster point at
 * nothing: that would end recovery at once. A cluster exists once it has archived a segment.
 */
async function checkClusterExists(deps: FetchDeps): Promise<void> {
  if (await deps.store.head(identityKey(deps.cluster))) return;
  throw new StorageError(`cluster '${deps.cluster}' does not exist in ${deps.store.url}`, {
    transient: false,
    hint: "check --repo and --cluster (PGHA_REPO, PGHA_CLUSTER): they must name the repository and cluster that archived this WAL",
  });
}

/** Errors while streaming that are not bad data: a full disk is local, a broken connection transient. */
function asFetchError(error: unknown, key: string, url: string): Error {
  if (error instanceof PghaError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e?.code === "ENOSPC" || e?.code === "EACCES" || e?.code === "EROFS") {
    return new LocalIoError(`cannot write the fetched file: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  return readFailure(`${url}/${key}`, error);
}
