/**
 * pushWalFile: archive ONE WAL file, in two halves: prepareWalFile (read, check, hash,
 * compress: CPU only, so the asynchronous archiver runs it on worker threads) and
 * storeWalFile (identity, write, verify).
 *
 * Guarantees:
 * - resolves only after the object is stored and a HEAD shows the expected size and
 *   checksum metadata (the store acknowledged a Content-MD5/CRC-checked upload before);
 * - a name already archived with the same content resolves "already-archived" without
 *   uploading; with different content it throws WalConflictError and writes nothing;
 * - a segment whose header does not match its name, or whose cluster identity differs
 *   from the repository cluster's, is refused before anything is written.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressBuffer, compressStream } from "../compress/codec.js";
import type { Compression } from "../compress/compression.js";
import {
  AlreadyExistsError,
  describeSystemError,
  IntegrityError,
  LocalIoError,
  RefusedError,
  WalConflictError,
} from "../errors.js";
import type { Logger } from "../log.js";
import { ensureIdentity, identityFromHeader } from "../repository/identity.js";
import { walKey } from "../repository/keys.js";
import {
  type ContentMeta,
  decodeContentMeta,
  encodeContentMeta,
  sameContent,
} from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { parseWalFileName, type WalFileName } from "./names.js";
import { checkSegmentHeader, LONG_PAGE_HEADER_SIZE, type LongPageHeader } from "./page-header.js";

export interface PushDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  log: Logger;
  now: () => Date;
}

export interface PushOutcome {
  status: "stored" | "already-archived";
  name: string;
  key: string;
  rawSize: number;
  storedSize: number;
  sha256: string;
}

/** History and backup-history files are small text files. */
const MAX_TEXT_FILE = 1 << 20;

/**
 * A WAL file read, checked, hashed and compressed: the CPU half of a push, with no
 * repository access (the async archiver runs it on worker threads). Structured-cloneable.
 */
export interface PreparedWal {
  path: string;
  name: string;
  size: number;
  sha256: string;
  /** The segment's long page header; undefined for history and backup history files. */
  header: LongPageHeader | undefined;
  /** The compressed body; undefined above IN_MEMORY_LIMIT, where storing streams the file. */
  body: Buffer | undefined;
}

/** Reads and checks the file (name, page header or text), hashes and compresses it. */
export async function prepareWalFile(path: string, compression: Compression): Promise<PreparedWal> {
  const name = basename(path);
  const file = parseWalFileName(name);
  if (!file) {
    throw new RefusedError(
      `'${name}' is not a WAL file name`,
      "archive_command should be 'pgha wal-push %p'; only WAL segments, .partial, .backup and .history files are archived",
    );
  }
  const source = await readSource(path, file);
  const header = checkContent(file, source.head, source.size);
  return {
    path,
    name,
    size: source.size,
    sha256: source.data ? sha256Of(source.data) : await hashFile(path),
    header,
    body: source.data ? await compressBuffer(compression, source.data) : undefined,
  };
}

export async function pushWalFile(deps: PushDeps, path: string): Promise<PushOutcome> {
  return storeWalFile(deps, await prepareWalFile(path, deps.compression));
}

/** The storage half of a push: the cluster identity, the write, the verification. */
export async function storeWalFile(deps: PushDeps, prepared: PreparedWal): Promise<PushOutcome> {
  const { name, path } = prepared;
  const file = parseWalFileName(name);
  if (!file) throw new RefusedError(`'${name}' is not a WAL file name`);
  if (prepared.header) {
    await ensureIdentity(deps.store, identityFromHeader(deps.cluster, prepared.header, deps.now()));
  }
  const key = walKey(deps.cluster, file);
  const content: ContentMeta = {
    sha256: prepared.sha256,
    rawSize: prepared.size,
    compression: deps.compression.algorithm,
  };

  // No HEAD first: put(ifAbsent) reports an existing name itself (atomically where the
  // store's capabilities.atomicIfAbsent says so; S3Store checks with a HEAD while it does
  // not know), and only then do we compare contents. One request less per segment here.
  let storedSize: number;
  try {
    storedSize = prepared.body
      ? (
          await deps.store.put(key, prepared.body, {
            metadata: encodeContentMeta(content),
            ifAbsent: true,
          })
        ).size
      : await putStreamed(deps, path, key, content);
  } catch (error) {
    if (error instanceof AlreadyExistsError) {
      // Archived already: a retry after a crash, or another pusher (an old primary after failover).
      const now = await deps.store.head(key);
      if (now) return alreadyArchived(deps, file, key, content, now.metadata, now.size);
    }
    throw error;
  }

  const check = await deps.store.head(key);
  if (
    !check ||
    check.size !== storedSize ||
    !sameContent(decodeContentMeta(key, check.metadata), content)
  ) {
    throw new IntegrityError(
      `${deps.store.url}/${key} does not read back as stored (size ${check?.size ?? "none"}, expected ${storedSize})`,
      "the storage did not keep what it acknowledged; PostgreSQL will retry the file",
    );
  }
  deps.log.debug(
    `archived ${name}: ${prepared.size} -> ${storedSize} bytes at ${deps.store.url}/${key}`,
  );
  return {
    status: "stored",
    name,
    key,
    rawSize: prepared.size,
    storedSize,
    sha256: prepared.sha256,
  };
}

/** The name is archived already: fine if the content is the same (made durable), else a conflict. */
async function alreadyArchived(
  deps: PushDeps,
  file: WalFileName,
  key: string,
  content: ContentMeta,
  metadata: Record<string, string>,
  storedSize: number,
): Promise<PushOutcome> {
  const stored = decodeContentMeta(key, metadata);
  if (sameContent(stored, content)) {
    // An earlier push may have died between rename and fsync: make sure before saying yes.
    if (!deps.store.capabilities.durableWhenVisible) await deps.store.durable(key);
    deps.log.info(`${file.name} is already archived with the same content; nothing to do`);
    return {
      status: "already-archived",
      name: file.name,
      key,
      rawSize: content.rawSize,
      storedSize,
      sha256: content.sha256,
    };
  }
  throw new WalConflictError(
    `${file.name} is already archived at ${deps.store.url}/${key} with different content (sha256 ${stored.sha256.slice(0, 12)}…, ${stored.rawSize} bytes; this file ${content.sha256.slice(0, 12)}…, ${content.rawSize} bytes); nothing was overwritten`,
    "two servers are archiving the same timeline (an old primary after failover?); stop the one that is not the primary, or give each cluster its own --cluster",
  );
}

/**
 * Segments up to this size (the default is 16 MiB) are read once into memory, hashed and
 * compressed there: one read instead of two streamed passes, the hot path of archive_command.
 * Larger ones (wal_segment_size goes up to 1 GiB) are streamed.
 */
const IN_MEMORY_LIMIT = 64 << 20;

interface Source {
  size: number;
  /** The first bytes: the page header, or a whole text file. */
  head: Buffer;
  /** The whole file when it is at most IN_MEMORY_LIMIT bytes. */
  data: Buffer | undefined;
}

async function readSource(path: string, file: WalFileName): Promise<Source> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new LocalIoError(`cannot open ${path}: ${describeSystemError(error)}`, {
      hint: "PostgreSQL runs archive_command in the data directory; pass %p as it is",
      cause: error,
    });
  }
  try {
    const { size } = await handle.stat();
    const textFile = file.kind === "history" || file.kind === "backup";
    const wanted =
      size <= IN_MEMORY_LIMIT ? size : textFile ? MAX_TEXT_FILE : LONG_PAGE_HEADER_SIZE;
    const buffer = Buffer.alloc(wanted);
    let filled = 0;
    while (filled < wanted) {
      const { bytesRead } = await handle.read(buffer, filled, wanted - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const head = buffer.subarray(0, filled);
    if (size > IN_MEMORY_LIMIT) return { size, head, data: undefined };
    if (filled !== size) {
      throw new LocalIoError(`${path} changed size while it was being read`, {
        hint: "PostgreSQL never changes a file it hands to archive_command; is something else writing to pg_wal?",
      });
    }
    return { size, head, data: head };
  } catch (error) {
    if (error instanceof LocalIoError) throw error;
    throw new LocalIoError(`cannot read ${path}: ${describeSystemError(error)}`, { cause: error });
  } finally {
    await handle.close();
  }
}

/** The streamed path for large segments: the file is read a second time while uploading. */
async function putStreamed(
  deps: PushDeps,
  path: string,
  key: string,
  content: ContentMeta,
): Promise<number> {
  const compress = await compressStream(deps.compression);
  const rehash = createHash("sha256");
  const source = createReadStream(path);
  try {
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        rehash.update(chunk);
        done(null, chunk);
      },
    });
    source.on("error", (error) => compress.destroy(error));
    const body = source.pipe(tap).pipe(compress);
    const stored = await deps.store.put(key, body, {
      metadata: encodeContentMeta(content),
      ifAbsent: true,
    });
    if (rehash.digest("hex") !== content.sha256) {
      // The file changed between the two reads: what we stored does not match its metadata.
      await deps.store.delete(key);
      throw new LocalIoError(`${path} changed while it was being archived`, {
        hint: "PostgreSQL never changes a file it hands to archive_command; is something else writing to pg_wal?",
      });
    }
    return stored.size;
  } finally {
    // Whatever the store did not consume (it failed early) must not hold the file open.
    source.destroy();
    compress.destroy();
  }
}

function sha256Of(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The local checks: a segment's header matches its name; history files are short text. */
function checkContent(file: WalFileName, head: Buffer, size: number): LongPageHeader | undefined {
  if (file.kind === "segment" || file.kind === "partial") {
    return checkSegmentHeader(file, head, size);
  }
  // .history and .backup files are short text written by PostgreSQL.
  if (size > MAX_TEXT_FILE || head.includes(0)) {
    throw new RefusedError(
      `${file.name} is not a ${file.kind === "history" ? "timeline history" : "backup history"} file (binary or over 1 MiB)`,
    );
  }
  const text = head.toString("utf8");
  if (file.kind === "backup" && !text.includes("START WAL LOCATION")) {
    throw new RefusedError(
      `${file.name} is not a backup history file (no START WAL LOCATION line)`,
    );
  }
  return undefined;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  try {
    await pipeline(createReadStream(path), hash);
  } catch (error) {
    throw new LocalIoError(`cannot read ${path}: ${describeSystemError(error)}`, { cause: error });
  }
  return hash.digest("hex");
}
