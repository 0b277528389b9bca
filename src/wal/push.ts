/**
 * pushWalFile: archive ONE WAL file, in two halves: prepareWalFile (read, check, hash,
 * compress: CPU only, so the asynchronous archiver runs it on worker threads) and
 * storeWalFile (identity, write, verify).
 *
 * Guarantees:
 * - resolves only after the object is stored and verified: a HEAD shows the expected size
 *   and checksum metadata, or the store confirmed the bytes (StoredObject.verified) and an
 *   earlier push to this repository read its metadata back (see "Requests" below);
 * - a name already archived with the same content resolves "already-archived" without
 *   uploading; with different content it throws WalConflictError and writes nothing;
 * - a segment whose header does not match its name, or whose cluster identity differs
 *   from the repository cluster's, is refused before anything is written.
 *
 * Requests, and the guarantee each one buys (S3; a local repository does the same in
 * local files). With deps.facts (repo-facts.ts: what an earlier push learned, kept in
 * pg_wal/.pgha/ for 10 minutes) a push of a segment to S3 makes ONE request, the PUT, on
 * a server that honours If-None-Match (AWS S3, MinIO, Ceph), and HEAD + PUT on one that
 * does not (s3rver); the first push, and one every 10 minutes, makes them all:
 *
 * - GET identity.json: refuses a segment of another cluster (system identifier, WAL
 *   format). The identity never changes once written, so a cached copy answers as well.
 * - PUT probes/if-none-match, twice: learns whether the server honours If-None-Match,
 *   which decides the layout (below) and whether the next HEAD is needed.
 * - HEAD before the PUT: only where the server is not known to honour If-None-Match; it
 *   keeps the PUT from replacing an archived object with different content.
 * - PUT with If-None-Match: * and Content-MD5: stores the object; the server verifies the
 *   body's MD5 and refuses to replace an existing object (412: compared by a HEAD, then
 *   already archived or a conflict).
 * - HEAD after the PUT: reads size and metadata back, in case the store acknowledged what
 *   it did not keep, or kept without pgha's metadata (which every wal-fetch needs). The
 *   PUT's ETag, when it is the MD5 of the body (a single PUT without SSE-KMS/SSE-C),
 *   already says the server stored exactly those bytes; what it cannot say is that the
 *   store keeps metadata, which the push that filled the cache checked. So this HEAD is
 *   made on a cold cache or when the ETag proves nothing (multipart, SSE-KMS).
 *
 * Where If-None-Match is not known to be honoured (the probe found it ignored, or could
 * not run), a HEAD before the PUT cannot stop a concurrent pusher: the object goes to a
 * content-addressed key instead, with a LIST of the name before and after the PUT
 * (storeVersion): LIST + PUT + LIST on a warm cache.
 */
import { createHash } from "node:crypto";
import { createReadStream, constants as fsConstants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressBuffer, compressStream } from "../compress/codec.js";
import type { Compression } from "../compress/compression.js";
import {
  AlreadyExistsError,
  ClusterMismatchError,
  describeSystemError,
  IntegrityError,
  LocalIoError,
  RefusedError,
  WalConflictError,
} from "../errors.js";
import type { Logger } from "../log.js";
import {
  type ClusterIdentity,
  checkIdentity,
  ensureIdentity,
  identityFromHeader,
} from "../repository/identity.js";
import { conditionalWriteProbeKey, walKey, walVersionKey } from "../repository/keys.js";
import {
  type ContentMeta,
  decodeContentMeta,
  encodeWalMeta,
  sameContent,
} from "../repository/object-meta.js";
import type { ObjectStore, StoredObject } from "../storage/object-store.js";
import { parseHistory } from "./history.js";
import { parseWalFileName, type WalFileName } from "./names.js";
import { checkSegmentHeader, LONG_PAGE_HEADER_SIZE, type LongPageHeader } from "./page-header.js";
import type { RepoFacts, RepoFactsCache } from "./repo-facts.js";
import { conflictError, contentsOf, listWalVersions, type WalVersion } from "./versions.js";

export interface PushDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  log: Logger;
  now: () => Date;
  /** Where pushes remember what they learned about the repository; absent: ask every time. */
  facts?: RepoFactsCache | undefined;
  /** Files up to this size are pushed from memory, larger ones streamed (tests lower it). */
  inMemoryLimit?: number;
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
export async function prepareWalFile(
  path: string,
  compression: Compression,
  inMemoryLimit = IN_MEMORY_LIMIT,
): Promise<PreparedWal> {
  const name = basename(path);
  const file = parseWalFileName(name);
  if (!file) {
    throw new RefusedError(
      `'${name}' is not a WAL file name`,
      "archive_command should be 'pgha wal-push %p'; only WAL segments, .partial, .backup and .history files are archived",
    );
  }
  const source = await readSource(path, file, inMemoryLimit);
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
  return storeWalFile(deps, await prepareWalFile(path, deps.compression, deps.inMemoryLimit));
}

/** The storage half of a push: the cluster identity, the write, the verification. */
export async function storeWalFile(deps: PushDeps, prepared: PreparedWal): Promise<PushOutcome> {
  const { name, path } = prepared;
  const file = parseWalFileName(name);
  if (!file) throw new RefusedError(`'${name}' is not a WAL file name`);
  const candidate = prepared.header
    ? identityFromHeader(deps.cluster, prepared.header, deps.now())
    : undefined;

  // What an earlier push learned; dropped if the repository says otherwise.
  let facts = await deps.facts?.read(deps.now());
  // Whether the repository is encrypted, as the push that filled the cache found it.
  if (facts?.encrypted !== undefined) await deps.store.encryptionMarker?.(facts.encrypted);
  let identity: ClusterIdentity | undefined;
  if (candidate) ({ identity, facts } = await clusterIdentity(deps, candidate, facts));
  // Only a push that checked the identity can keep what a probe finds.
  await learnConditionalWrites(deps, facts, identity !== undefined);

  const key = walKey(deps.cluster, file);
  const { sha256 } = prepared;
  const content: ContentMeta = {
    sha256,
    rawSize: prepared.size,
    compression: deps.compression.algorithm,
  };
  // Taken after PostgreSQL handed the file over: every record in it is older.
  const metadata = encodeWalMeta(content, deps.now());

  // Where a conditional write may be ignored, two pushers of one name could both write
  // it: the content-addressed layout keeps them apart (storeVersion).
  if (deps.store.capabilities.atomicIfAbsent !== true) {
    return storeVersion(deps, prepared, file, content, identity, facts);
  }

  // No HEAD first: put(ifAbsent) reports an existing name itself (atomically where the
  // store's capabilities.atomicIfAbsent says so; the S3 stores check with a HEAD while it
  // is not known), and only then do we compare contents.
  let stored: StoredObject;
  try {
    stored = prepared.body
      ? await deps.store.put(key, prepared.body, { metadata, ifAbsent: true })
      : await putStreamed(deps, path, key, content, metadata, true);
  } catch (error) {
    if (error instanceof AlreadyExistsError) {
      // Archived already: a retry after a crash, or another pusher (an old primary after failover).
      const now = await deps.store.head(key);
      if (now) {
        const outcome = await alreadyArchived(deps, file, key, content, now.metadata, now.size);
        if (identity && !facts) await remember(deps, identity);
        return outcome;
      }
    }
    throw error;
  }

  await readBack(deps, key, stored, content, identity, facts);
  deps.log.debug(
    `archived ${name}: ${prepared.size} -> ${stored.size} bytes at ${deps.store.url}/${key}`,
  );
  return { status: "stored", name, key, rawSize: prepared.size, storedSize: stored.size, sha256 };
}

/** The HEAD after the PUT (see the module comment for when it is left out). */
async function readBack(
  deps: PushDeps,
  key: string,
  stored: StoredObject,
  content: ContentMeta,
  identity: ClusterIdentity | undefined,
  facts: RepoFacts | undefined,
): Promise<void> {
  if (stored.verified && facts) return;
  const check = await deps.store.head(key);
  if (
    !check ||
    check.size !== stored.size ||
    !sameContent(decodeContentMeta(key, check.metadata), content)
  ) {
    throw new IntegrityError(
      `${deps.store.url}/${key} does not read back as stored (size ${check?.size ?? "none"}, expected ${stored.size})`,
      "the storage did not keep what it acknowledged; PostgreSQL will retry the file",
    );
  }
  if (identity && !facts) await remember(deps, identity);
}

/**
 * The push where the store's conditional writes are not proven (a server that ignores
 * If-None-Match, or one not probed): the object goes to its content-addressed key
 * `<key>.<sha256>` (FORMAT.md), so a concurrent pusher of the same name with other
 * content writes another key and neither is lost; equal content writes equal bytes.
 * Requests: LIST the name, PUT, (HEAD, as above), LIST again.
 * - The first listing finds the name archived already: with this content, nothing to do;
 *   with other content, a conflict before anything is written.
 * - The second finds a pusher that raced this one: with other content, a conflict (exit
 *   5), and both objects stay for the operator to choose from; wal-fetch refuses the name
 *   until one is deleted. Of two racers, the one that lists last sees the other.
 */
async function storeVersion(
  deps: PushDeps,
  prepared: PreparedWal,
  file: WalFileName,
  content: ContentMeta,
  identity: ClusterIdentity | undefined,
  facts: RepoFacts | undefined,
): Promise<PushOutcome> {
  const key = walVersionKey(deps.cluster, file, content.sha256);
  const before = await listWalVersions(deps.store, deps.cluster, file);
  // Archived already with this content (this layout, or the plain key): nothing to write.
  const same = await refuseOtherContent(deps, file, key, content, before, false);
  for (const version of same) {
    const info = await deps.store.head(version.key);
    if (!info) continue;
    const outcome = await alreadyArchived(
      deps,
      file,
      version.key,
      content,
      info.metadata,
      info.size,
    );
    if (identity && !facts) await remember(deps, identity);
    return outcome;
  }
  // Taken after PostgreSQL handed the file over: every record in it is older.
  const metadata = encodeWalMeta(content, deps.now(), 2);
  const stored = prepared.body
    ? await deps.store.put(key, prepared.body, { metadata })
    : await putStreamed(deps, prepared.path, key, content, metadata, false);
  await readBack(deps, key, stored, content, identity, facts);
  const after = await listWalVersions(deps.store, deps.cluster, file);
  await refuseOtherContent(
    deps,
    file,
    key,
    content,
    after.filter((v) => v.key !== key),
    true,
  );
  deps.log.debug(
    `archived ${file.name}: ${prepared.size} -> ${stored.size} bytes at ${deps.store.url}/${key}`,
  );
  return {
    status: "stored",
    name: file.name,
    key,
    rawSize: prepared.size,
    storedSize: stored.size,
    sha256: content.sha256,
  };
}

/**
 * Throws WalConflictError when one of `stored` holds other content than this file;
 * else returns those of them that hold this content.
 */
async function refuseOtherContent(
  deps: PushDeps,
  file: WalFileName,
  key: string,
  content: ContentMeta,
  stored: WalVersion[],
  written: boolean,
): Promise<WalVersion[]> {
  if (stored.length === 0) return [];
  const mine: WalVersion = { key, sha256: content.sha256, size: 0 };
  const groups = await contentsOf(deps.store, [mine, ...stored]);
  if (groups.size <= 1) {
    return (groups.get(content.sha256) ?? []).filter((v) => stored.some((s) => s.key === v.key));
  }
  // Not written: this push's key holds nothing, name the other objects only.
  if (!written) groups.delete(content.sha256);
  throw conflictError(
    deps.store,
    file.name,
    groups,
    written
      ? "this push stored its own copy and kept the other; nothing was overwritten, wal-fetch refuses the name until one is deleted"
      : `this file (sha256 ${content.sha256.slice(0, 12)}…, ${content.rawSize} bytes) differs; nothing was written`,
    !written,
  );
}

/**
 * The repository cluster's identity, checked against the segment's: from the cache when
 * it has it (no request), else read (or recorded, by the cluster's first push) from the
 * repository. A cached identity that disagrees is not trusted: the repository decides,
 * and the cache is dropped (facts undefined) so that this push refills it.
 */
async function clusterIdentity(
  deps: PushDeps,
  candidate: ClusterIdentity,
  facts: RepoFacts | undefined,
): Promise<{ identity: ClusterIdentity; facts: RepoFacts | undefined }> {
  if (facts) {
    try {
      checkIdentity(facts.identity, candidate, deps.store.url);
      return { identity: facts.identity, facts };
    } catch (error) {
      if (!(error instanceof ClusterMismatchError)) throw error;
    }
  }
  return { identity: await ensureIdentity(deps.store, candidate), facts: undefined };
}

/**
 * Tells a store that depends on its server whether the server honours conditional writes:
 * from the cache, or by a probe (two PUTs, made also where no cache keeps the answer: the
 * answer decides the layout, so that one server's pushes all use one). When the probe
 * fails, or a push checked no identity (history files), it stays unknown and the push
 * uses the content-addressed layout.
 */
async function learnConditionalWrites(
  deps: PushDeps,
  facts: RepoFacts | undefined,
  canProbe: boolean,
) {
  const store = deps.store;
  if (!store.learnCapabilities || store.capabilities.atomicIfAbsent !== "unknown") return;
  const probeKey = conditionalWriteProbeKey(deps.cluster);
  if (facts) {
    if (facts.atomicIfAbsent !== undefined)
      await store.learnCapabilities(probeKey, { atomicIfAbsent: facts.atomicIfAbsent });
    return;
  }
  if (!canProbe) return;
  try {
    const learned = await store.learnCapabilities(probeKey);
    deps.log.debug(
      `${store.url} ${learned.atomicIfAbsent ? "honours" : "ignores"} If-None-Match: *`,
    );
  } catch (error) {
    deps.log.debug(
      `cannot probe conditional writes at ${store.url}/${probeKey}: ${(error as Error).message}`,
    );
  }
}

/** Keeps what this push checked for the next ones (never fails the push). */
async function remember(deps: PushDeps, identity: ClusterIdentity) {
  const known = deps.store.capabilities.atomicIfAbsent;
  const encrypted = await deps.store.encryptionMarker?.().catch(() => undefined);
  await deps.facts?.write(
    { identity, atomicIfAbsent: known === "unknown" ? undefined : known, encrypted },
    deps.now(),
  );
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

async function readSource(path: string, file: WalFileName, limit: number): Promise<Source> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer (forever); the stat
    // below refuses it. It changes nothing for a regular file.
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    throw new LocalIoError(`cannot open ${path}: ${describeSystemError(error)}`, {
      hint: "PostgreSQL runs archive_command in the data directory; pass %p as it is",
      cause: error,
    });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new RefusedError(
        `${path} is not a regular file (${stats.isFIFO() ? "a FIFO" : stats.isDirectory() ? "a directory" : "a special file"}); nothing was archived`,
        "PostgreSQL hands archive_command the WAL files in pg_wal, which are regular files; pass %p as it is",
      );
    }
    const { size } = stats;
    const textFile = file.kind === "history" || file.kind === "backup";
    const wanted = size <= limit ? size : textFile ? MAX_TEXT_FILE : LONG_PAGE_HEADER_SIZE;
    const buffer = Buffer.alloc(wanted);
    let filled = 0;
    while (filled < wanted) {
      const { bytesRead } = await handle.read(buffer, filled, wanted - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const head = buffer.subarray(0, filled);
    if (size > limit) return { size, head, data: undefined };
    if (filled !== size) {
      throw new LocalIoError(`${path} changed size while it was being read`, {
        hint: "PostgreSQL never changes a file it hands to archive_command; is something else writing to pg_wal?",
      });
    }
    return { size, head, data: head };
  } catch (error) {
    if (error instanceof LocalIoError || error instanceof RefusedError) throw error;
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
  metadata: Record<string, string>,
  /** True for the plain key; false for a content-addressed one (format 2, FORMAT.md). */
  ifAbsent: boolean,
): Promise<StoredObject> {
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
    const stored = await deps.store.put(key, body, { metadata, ifAbsent });
    if (rehash.digest("hex") !== content.sha256) {
      // The file changed between the two reads: what we stored does not match its metadata.
      await deps.store.delete(key);
      throw new LocalIoError(`${path} changed while it was being archived`, {
        hint: "PostgreSQL never changes a file it hands to archive_command; is something else writing to pg_wal?",
      });
    }
    return stored;
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
  if (file.kind === "history") {
    const parsed = parseHistory(file.timeline, text);
    if (!parsed.ok) {
      throw new RefusedError(
        `${file.name} is not a valid timeline history file: ${parsed.reason}`,
        "PostgreSQL writes these files itself; one that does not parse would stop every recovery that reads it, so it is not archived",
      );
    }
  }
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
