/**
 * unpackBundle: one tar object of a backup decompressed and extracted into its part's
 * directory, on whichever thread runs it (a restore job worker). It reports what it wrote
 * (each file's size and sha256, each directory's mode, each symlink) and leaves the checks
 * against the manifest, the directory modes and the symlinks to the caller: symlinks are
 * made only once every object is extracted, so no entry can write through one. Objects of
 * one part may be extracted in any order and at once: a file's parent directories are
 * made when it needs them.
 */
import { createHash } from "node:crypto";
import { mkdir, open } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import * as tar from "tar-stream";
import type { CompressionAlgorithm } from "../compress/compression.js";
import { SyncDecompressor } from "../compress/zstd-sync.js";
import { describeSystemError, IntegrityError, LocalIoError, PghaError } from "../errors.js";
import { writeAll } from "../local-files.js";

/** File data is written in pieces of about this size (one write in flight per file). */
const WRITE_BYTES = 1 << 20;

export interface UnpackTask {
  /** The part's directory (absolute). */
  dest: string;
  compression: CompressionAlgorithm;
  /** The object, for messages: s3://bucket/prefix/key. */
  what: string;
}

export interface UnpackEvents {
  /** A file was written and closed: its path in the tar, size and sha256. */
  file(path: string, size: number, sha256: string): void;
  /** A directory entry (absolute path): its mode is the caller's to set at the end. */
  directory(path: string, mode: number): void;
  /** A symlink entry (absolute path): the caller makes it at the end. */
  symlink(path: string, target: string): void;
  /** Bytes of tar stream decompressed, for progress. */
  progress(bytes: number): void;
}

export interface UnpackResult {
  /** Size of the tar stream. */
  rawSize: number;
}

/** The stored bytes come from `input`; a failure of `input` is rethrown as it is. */
export async function unpackBundle(
  task: UnpackTask,
  input: AsyncIterable<Uint8Array>,
  events: UnpackEvents,
): Promise<UnpackResult> {
  const decoder = task.compression === "none" ? undefined : await SyncDecompressor.create();
  const extract = tar.extract();
  let rawSize = 0;
  let inputFailure: unknown;
  const pump = (async () => {
    const feed = async (chunk: Buffer) => {
      rawSize += chunk.length;
      events.progress(chunk.length);
      if (!extract.write(chunk)) await new Promise<void>((r) => extract.once("drain", () => r()));
    };
    try {
      for await (const chunk of input) {
        const out: Buffer[] = [];
        if (!decoder) out.push(Buffer.from(chunk));
        else {
          try {
            decoder.write(chunk, (piece) => out.push(piece));
          } catch (error) {
            throw corrupt(task, error);
          }
        }
        for (const piece of out) await feed(piece);
      }
    } catch (error) {
      inputFailure ??= error;
      throw error;
    }
    try {
      decoder?.end();
    } catch (error) {
      throw corrupt(task, error);
    }
    (extract as unknown as { end(): void }).end();
  })().catch((error: Error) => {
    extract.destroy(error);
  });
  try {
    await extractEntries(extract, task, events);
  } catch (error) {
    // The pump may wait for a drain that never comes: it is not awaited (the caller stops
    // the input).
    extract.destroy(error as Error);
    throw classify(inputFailure ?? error, task);
  }
  await pump;
  if (inputFailure) throw classify(inputFailure, task);
  return { rawSize };
}

function corrupt(task: UnpackTask, error: unknown): IntegrityError {
  const why = error instanceof Error ? error.message : String(error);
  return new IntegrityError(`${task.what} is corrupt: cannot decompress (${why})`);
}

/** Whatever failed while extracting: the input's own error, the local disk, or the tar data. */
function classify(error: unknown, task: UnpackTask): unknown {
  if (error instanceof PghaError || (error as Error).name === "AbortError") return error;
  if ((error as NodeJS.ErrnoException).code)
    return new LocalIoError(`cannot write into ${task.dest}: ${describeSystemError(error)}`, {
      cause: error,
    });
  const why = error instanceof Error ? error.message : String(error);
  return new IntegrityError(`${task.what} is not a valid tar stream: ${why}`);
}

function safePath(root: string, name: string): string {
  const clean = name.replace(/\/+$/, "");
  const full = resolve(root, clean);
  if (isAbsolute(clean) || (full !== root && !full.startsWith(`${root}/`))) {
    throw new IntegrityError(`backup tar entry '${name}' points outside the target`);
  }
  return full;
}

async function extractEntries(
  extract: tar.Extract,
  task: UnpackTask,
  events: UnpackEvents,
): Promise<void> {
  const made = new Set<string>([task.dest]);
  const makeDirectory = async (path: string) => {
    if (made.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o700 });
    made.add(path);
  };
  for await (const entry of extract) {
    const { header } = entry;
    const path = safePath(task.dest, header.name);
    if (header.type === "directory") {
      await makeDirectory(path);
      events.directory(path, header.mode ?? 0o700);
      entry.resume();
    } else if (header.type === "symlink") {
      events.symlink(path, header.linkname ?? "");
      entry.resume();
    } else if (header.type === "file") {
      await makeDirectory(dirname(path));
      const name = header.name.replace(/\/+$/, "");
      const hash = createHash("sha256");
      let size = 0;
      const handle = await open(path, "wx", (header.mode ?? 0o600) & 0o7777);
      let writing: Promise<void> = Promise.resolve();
      try {
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const write = async () => {
          const data = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
          pending = [];
          pendingBytes = 0;
          // One write in flight: the next piece is decompressed and hashed meanwhile.
          await writing;
          writing = writeAll(handle, data);
          writing.catch(() => undefined);
        };
        for await (const chunk of entry) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          pending.push(chunk as Buffer);
          pendingBytes += (chunk as Buffer).length;
          if (pendingBytes >= WRITE_BYTES) await write();
        }
        if (pendingBytes > 0) await write();
        await writing;
      } finally {
        await writing.catch(() => undefined);
        await handle.close();
      }
      events.file(name, size, hash.digest("hex"));
    } else {
      throw new IntegrityError(
        `${task.what} holds an unexpected ${header.type} entry '${header.name}'`,
      );
    }
  }
}
