/**
 * pushWalFile: archive ONE WAL file. A function of one file so that a later look-ahead /
 * asynchronous mode can call it for other .ready files.
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
import { compressStream } from "../compress/codec.js";
import type { CompressionSpec } from "../config/values.js";
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
import { checkSegmentHeader, LONG_PAGE_HEADER_SIZE } from "./page-header.js";

export interface PushDeps {
  store: ObjectStore;
  cluster: string;
  compression: CompressionSpec;
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

export async function pushWalFile(deps: PushDeps, path: string): Promise<PushOutcome> {
  const name = basename(path);
  const file = parseWalFileName(name);
  if (!file) {
    throw new RefusedError(
      `'${name}' is not a WAL file name`,
      "archive_command should be 'pgha wal-push %p'; only WAL segments, .partial, .backup and .history files are archived",
    );
  }
  const textFile = file.kind === "history" || file.kind === "backup";
  const { size, head } = await readHead(path, textFile ? MAX_TEXT_FILE : LONG_PAGE_HEADER_SIZE);
  await checkContent(deps, file, head, size);

  const key = walKey(deps.cluster, file);
  const sha256 = await hashFile(path);
  const content: ContentMeta = {
    sha256,
    rawSize: size,
    compression: deps.compression.algorithm,
  };

  const existing = await deps.store.head(key);
  if (existing) return alreadyArchived(deps, file, key, content, existing.metadata, existing.size);

  let storedSize: number;
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
    storedSize = stored.size;
    if (rehash.digest("hex") !== sha256) {
      // The file changed between the two reads: what we stored does not match its metadata.
      await deps.store.delete(key);
      throw new LocalIoError(`${path} changed while it was being archived`, {
        hint: "PostgreSQL never changes a file it hands to archive_command; is something else writing to pg_wal?",
      });
    }
  } catch (error) {
    if (error instanceof AlreadyExistsError) {
      // Another pusher (an old primary after failover, a retry) stored the name meanwhile.
      const now = await deps.store.head(key);
      if (now) return alreadyArchived(deps, file, key, content, now.metadata, now.size);
    }
    throw error;
  } finally {
    // Whatever the store did not consume (it failed early) must not hold the file open.
    source.destroy();
    compress.destroy();
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
  deps.log.debug(`archived ${name}: ${size} -> ${storedSize} bytes at ${deps.store.url}/${key}`);
  return { status: "stored", name, key, rawSize: size, storedSize, sha256 };
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
    await deps.store.durable(key);
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

async function readHead(path: string, limit: number): Promise<{ size: number; head: Buffer }> {
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
    const head = Buffer.alloc(Math.min(size, limit));
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return { size, head: head.subarray(0, bytesRead) };
  } finally {
    await handle.close();
  }
}

async function checkContent(deps: PushDeps, file: WalFileName, head: Buffer, size: number) {
  if (file.kind === "segment" || file.kind === "partial") {
    const header = checkSegmentHeader(file, head, size);
    await ensureIdentity(deps.store, identityFromHeader(deps.cluster, header, deps.now()));
    return;
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
