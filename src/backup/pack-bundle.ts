/**
 * packBundle: one bundle of a backup (a run of walk entries, see bundle-plan.ts) read,
 * written as a tar stream, hashed and compressed, on whichever thread runs it (a backup job
 * worker). The stored bytes go to `sink.output` in buffers of a fixed size; nothing else
 * grows with the bundle: files are read into two reused buffers (one is read while the
 * other is hashed and compressed, and zstd has consumed a buffer when it hands it back).
 *
 * Every file's sha256 is taken from exactly the bytes put into the tar. A file that shrank
 * since the walk is padded with zeros, one that grew is cut at the walked size, one that
 * vanished is left out: WAL replay from the backup's start repairs all three.
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import type { Compression } from "../compress/compression.js";
import { OUTPUT_BYTES, SyncCompressor } from "../compress/zstd-sync.js";
import { describeSystemError, LocalIoError, PghaError } from "../errors.js";
import type { BackupFileEntry } from "../repository/backup-manifest.js";
import { END_OF_ARCHIVE, encodeTarHeader, padding } from "./tar-header.js";
import type { WalkEntry } from "./walk.js";

const READ_BYTES = 1 << 20;
const ZEROS = Buffer.alloc(512);

export interface PackTask {
  part: string;
  /** Absolute directory the entries' paths are relative to. */
  root: string;
  entries: WalkEntry[];
  compression: Compression;
  /** libzstd's own threads for this bundle (0: compress on the job's thread). */
  zstdThreads: number;
}

export interface PackResult {
  files: BackupFileEntry[];
  /** Size of the tar stream. */
  rawSize: number;
  storedSize: number;
  storedSha256: string;
}

export interface PackSink {
  /** Takes one buffer of stored bytes (it is the sink's now); resolves when more may come. */
  output(chunk: Buffer): Promise<void>;
  /** File bytes read, for progress. */
  progress(bytes: number): void;
}

/** The stored side: compression (or a copy) into output buffers of OUTPUT_BYTES. */
interface Encoder {
  write(input: Uint8Array, emit: (chunk: Buffer) => void): void;
  end(emit: (chunk: Buffer) => void): void;
}

class Copier implements Encoder {
  private output = Buffer.allocUnsafeSlow(OUTPUT_BYTES);
  private used = 0;

  write(input: Uint8Array, emit: (chunk: Buffer) => void): void {
    let rest = input;
    while (rest.length > 0) {
      const take = Math.min(rest.length, this.output.length - this.used);
      this.output.set(rest.subarray(0, take), this.used);
      this.used += take;
      rest = rest.subarray(take);
      if (this.used === this.output.length) this.end(emit);
    }
  }

  end(emit: (chunk: Buffer) => void): void {
    if (this.used === 0) return;
    emit(this.output.subarray(0, this.used));
    this.output = Buffer.allocUnsafeSlow(OUTPUT_BYTES);
    this.used = 0;
  }
}

export async function packBundle(task: PackTask, sink: PackSink): Promise<PackResult> {
  const encoder: Encoder =
    task.compression.algorithm === "none"
      ? new Copier()
      : await SyncCompressor.create({ level: task.compression.level, threads: task.zstdThreads });
  const storedHash = createHash("sha256");
  let rawSize = 0;
  let storedSize = 0;
  let ready: Buffer[] = [];
  const emit = (chunk: Buffer) => {
    storedHash.update(chunk);
    storedSize += chunk.length;
    ready.push(chunk);
  };
  /** Puts tar bytes in; `bytes` may be reused once this returns. */
  const put = (bytes: Uint8Array) => {
    rawSize += bytes.length;
    encoder.write(bytes, emit);
  };
  const flush = async () => {
    const out = ready;
    ready = [];
    for (const chunk of out) await sink.output(chunk);
  };

  const buffers = [Buffer.allocUnsafeSlow(READ_BYTES), Buffer.allocUnsafeSlow(READ_BYTES)] as const;
  const files: BackupFileEntry[] = [];
  for (const entry of task.entries) {
    if (entry.type === "directory" || entry.type === "symlink") {
      put(
        encodeTarHeader({
          name: entry.path,
          type: entry.type,
          size: 0,
          mode: entry.mode,
          mtime: entry.mtime,
          ...(entry.linkTarget === undefined ? {} : { linkname: entry.linkTarget }),
        }),
      );
      continue;
    }
    const absPath = join(task.root, entry.path);
    const sha256 = await packFile(entry, absPath, buffers, put, flush, sink);
    if (sha256 === undefined) continue;
    files.push({
      part: task.part,
      path: entry.path,
      size: entry.size,
      mode: entry.mode,
      mtime: entry.mtime.toISOString(),
      sha256,
    });
  }
  put(END_OF_ARCHIVE);
  encoder.end(emit);
  await flush();
  return { files, rawSize, storedSize, storedSha256: storedHash.digest("hex") };
}

/** One file into the tar: its sha256, or undefined when it vanished before it was opened. */
async function packFile(
  entry: WalkEntry,
  absPath: string,
  buffers: readonly [Buffer, Buffer],
  put: (bytes: Uint8Array) => void,
  flush: () => Promise<void>,
  sink: PackSink,
): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(absPath, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  const hash = createHash("sha256");
  try {
    put(
      encodeTarHeader({
        name: entry.path,
        type: "file",
        size: entry.size,
        mode: entry.mode,
        mtime: entry.mtime,
      }),
    );
    const read = (buffer: Buffer, at: number): Promise<Buffer> => {
      const want = Math.min(buffer.length, entry.size - at);
      return handle.read(buffer, 0, want, at).then(({ bytesRead }) =>
        // A file that shrank reads short or empty: the tar gets zeros up to its size.
        bytesRead === 0 ? buffer.subarray(0, want).fill(0) : buffer.subarray(0, bytesRead),
      );
    };
    // A read that fails while this loop waits is reported when it is awaited.
    const ahead = (buffer: Buffer, at: number) => {
      const promise = read(buffer, at);
      promise.catch(() => undefined);
      return promise;
    };
    let done = 0;
    let which = 0;
    let next = entry.size > 0 ? ahead(buffers[0], 0) : undefined;
    while (next) {
      const chunk = await next;
      done += chunk.length;
      which ^= 1;
      // Read the next chunk into the other buffer while this one is hashed and compressed.
      next = done < entry.size ? ahead(buffers[which] as Buffer, done) : undefined;
      hash.update(chunk);
      put(chunk);
      sink.progress(chunk.length);
      await flush();
    }
    const pad = padding(entry.size);
    if (pad > 0) put(ZEROS.subarray(0, pad));
  } catch (error) {
    // A stop (another job failed) or the sink's failure keeps its own meaning.
    if (error instanceof PghaError || (error as Error).name === "AbortError") throw error;
    throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
      cause: error,
    });
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}
