/**
 * fetchWalFile: deliver ONE archived WAL file to the path PostgreSQL asked for.
 *
 * Guarantees:
 * - a name not in the repository throws NotFoundError after a single lookup;
 * - the body is decompressed into a temporary file beside dest, its sha256 and size are
 *   checked against the object's metadata, it is fsynced and renamed onto dest, and the
 *   directory is fsynced: PostgreSQL never sees a partial or corrupt file;
 * - on any failure the temporary file is removed and dest is left as it was;
 * - a transient storage failure, also in the middle of the body, restarts the download
 *   within the store's retry budget (retryAsWhole: the download is retried as a whole,
 *   the requests inside it are not retried a second time).
 */
import { createHash, randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decompressStream } from "../compress/codec.js";
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
import { decodeContentMeta } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { retryAsWhole } from "../storage/retrying-store.js";
import { parseWalFileName } from "./names.js";

export interface FetchDeps {
  store: ObjectStore;
  cluster: string;
  log: Logger;
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
  const key = walKey(deps.cluster, file);
  let rawSize: number;
  try {
    rawSize = await retryAsWhole(deps.store, `fetch ${name}`, (store) =>
      download({ ...deps, store }, key, dest),
    );
  } catch (error) {
    if (error instanceof NotFoundError) await checkClusterExists(deps);
    throw error;
  }
  deps.log.debug(`restored ${name} (${rawSize} bytes) from ${deps.store.url}/${key} to ${dest}`);
  return { name, key, rawSize, dest };
}

async function download(deps: FetchDeps, key: string, dest: string): Promise<number> {
  const { info, body } = await deps.store.get(key);
  let meta: ReturnType<typeof decodeContentMeta>;
  try {
    meta = decodeContentMeta(key, info.metadata);
  } catch (error) {
    body.destroy();
    throw error;
  }
  const tmp = join(dirname(dest), `.pgha-tmp-${basename(dest)}-${randomBytes(4).toString("hex")}`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, "wx", 0o600);
  } catch (error) {
    body.destroy();
    throw new LocalIoError(`cannot create ${tmp}: ${describeSystemError(error)}`, { cause: error });
  }
  const hash = createHash("sha256");
  let size = 0;
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
    const sha256 = hash.digest("hex");
    if (size !== meta.rawSize || sha256 !== meta.sha256) {
      throw new IntegrityError(
        `${deps.store.url}/${key} is corrupt: got ${size} bytes with sha256 ${sha256.slice(0, 12)}…, expected ${meta.rawSize} bytes with ${meta.sha256.slice(0, 12)}…`,
        "the archived copy is damaged; restore it from another copy of the repository if there is one",
      );
    }
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, dest);
    await syncDirectory(dirname(dest));
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
  const message = e?.message ?? String(error);
  if (e?.code === "ENOSPC" || e?.code === "EACCES" || e?.code === "EROFS") {
    return new LocalIoError(`cannot write the fetched file: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  return new StorageError(`reading ${url}/${key} failed: ${message}`, {
    transient: true,
    cause: error,
  });
}
