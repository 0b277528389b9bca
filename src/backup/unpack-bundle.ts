/**
 * unpackBundle: one tar object of a backup decompressed and extracted into its part's
 * directory, on whichever thread runs it (a restore job worker). It reports what it wrote
 * (each file's size and sha256, each directory's mode, each symlink) and leaves the checks
 * against the manifest, the directory modes and the symlinks to the caller: symlinks are
 * made only once every object is extracted, so no entry can write through one. Objects of
 * one part may be extracted in any order and at once: a file's parent directories are
 * made when it needs them.
 *
 * Memory does not grow with the object: zstd decompresses into one reused buffer, the tar
 * reader hands out views of it, and file data is written from two reused buffers (one is
 * written while the other fills).
 */
import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import type { CompressionAlgorithm } from "../compress/compression.js";
import type { Frame } from "../compress/frames.js";
import { CorruptDataError, SyncDecompressor } from "../compress/zstd-sync.js";
import { IntegrityError, PghaError, restoreWriteError } from "../errors.js";
import { writeAll } from "../local-files.js";
import type { EntryPlan } from "./assembly-plan.js";
import { BlockScratch, BlockSink } from "./block-sink.js";
import { writtenAs } from "./pg-control-last.js";
import { VERSION_DIRECTORY } from "./tablespace-targets.js";
import { type TarEvent, TarFormatError, TarReader } from "./tar-reader.js";

/** File data is written in pieces of this size, one write in flight per job. */
const WRITE_BYTES = 1 << 20;

export interface UnpackTask {
  /** The part's directory (absolute). */
  dest: string;
  compression: CompressionAlgorithm;
  /** The object, for messages: s3://bucket/prefix/key. */
  what: string;
  /** A tablespace's part: every entry must be inside its version directory (PG_15_...). */
  tablespace?: boolean;
  /**
   * A chain assembly or a delta restore (assembly-plan.ts): what to do with each file
   * entry, by tar path; an entry not listed is read past. The files exist (--delta) or
   * are made by the first job that writes into them (`create`). Directory and symlink entries count only when `structure` is set
   * (the target backup's own objects).
   */
  plan?: {
    entries: Map<string, EntryPlan>;
    structure: boolean;
    /**
     * The target was empty: a planned file that does not exist yet is made by the first
     * job that writes into it (with its plan's mode), not beforehand.
     */
    create?: boolean;
  };
  /**
   * The object's zstd frames (compress/frames.ts), with a plan: frames that hold nothing
   * the plan needs are passed over, not decompressed.
   */
  frames?: Frame[];
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
  /** A planned entry's blocks were written, each checked against its hash. */
  blocks?(path: string, count: number): void;
}

export interface UnpackResult {
  /** Size of the tar stream. */
  rawSize: number;
  /** Bytes of it passed over without decompressing them (frames nothing was needed from). */
  skipped: number;
}

/** The stored bytes come from `input`; a failure of `input` is rethrown as it is. */
export async function unpackBundle(
  task: UnpackTask,
  input: AsyncIterable<Uint8Array>,
  events: UnpackEvents,
): Promise<UnpackResult> {
  const decoder = task.compression === "none" ? undefined : await SyncDecompressor.create();
  const reader = new TarReader();
  const writer = new EntryWriter(task, events);
  let rawSize = 0;
  const feed = async (bytes: Uint8Array) => {
    rawSize += bytes.length;
    events.progress(bytes.length);
    await reader.write(bytes, writer.handle);
  };
  let skipped = 0;
  try {
    if (decoder && task.frames && task.plan) {
      skipped = await readFrames(task.frames, input, decoder, reader, writer, feed, events);
      rawSize += skipped;
    } else {
      for await (const chunk of input) {
        if (decoder) await decoder.write(chunk, feed);
        else await feed(chunk);
      }
    }
    decoder?.end();
    reader.end();
  } catch (error) {
    await writer.abandon();
    throw classify(error, task);
  } finally {
    decoder?.release();
  }
  return { rawSize, skipped };
}

/**
 * The stored bytes of a planned unpack, frame by frame: a frame none of whose bytes are
 * needed (TarReader.neededFrom is past its end) is not decompressed, and the tar reader
 * passes over its bytes. Every frame decompressed must hold the bytes the index says.
 * Returns how many bytes of tar stream were passed over.
 */
async function readFrames(
  frames: readonly Frame[],
  input: AsyncIterable<Uint8Array>,
  decoder: SyncDecompressor,
  reader: TarReader,
  writer: EntryWriter,
  feed: (bytes: Uint8Array) => Promise<void>,
  events: UnpackEvents,
): Promise<number> {
  let at = -1;
  let storedLeft = 0;
  let skipping = false;
  let rawStart = 0;
  let rawSeen = 0;
  let skipped = 0;
  const counted = async (bytes: Uint8Array) => {
    rawSeen += bytes.length;
    await feed(bytes);
  };
  const frameEnded = async (frame: Frame) => {
    if (skipping) {
      await reader.skip(frame.raw, writer.handle);
      events.progress(frame.raw);
      skipped += frame.raw;
    } else if (rawSeen !== rawStart + frame.raw || !decoder.atFrameEnd) {
      throw new CorruptDataError(`its zstd frame ${at} does not hold the bytes its index says`);
    }
    rawStart += frame.raw;
    rawSeen = rawStart;
  };
  for await (const chunk of input) {
    let rest = chunk;
    while (rest.length > 0) {
      if (storedLeft === 0) {
        const frame = frames[++at];
        if (!frame) throw new CorruptDataError("it is longer than its zstd frames");
        storedLeft = frame.stored;
        skipping = reader.neededFrom(writer.wantFrom) >= rawStart + frame.raw;
      }
      const take = Math.min(rest.length, storedLeft);
      if (!skipping) await decoder.write(rest.subarray(0, take), counted);
      storedLeft -= take;
      rest = rest.subarray(take);
      if (storedLeft === 0) await frameEnded(frames[at] as Frame);
    }
  }
  if (storedLeft > 0 || at !== frames.length - 1)
    throw new CorruptDataError("it ends before its last zstd frame");
  return skipped;
}

/** Whatever failed while extracting: the input, the stored data, or the local disk. */
function classify(error: unknown, task: UnpackTask): unknown {
  const why = error instanceof Error ? error.message : String(error);
  if (error instanceof CorruptDataError)
    return new IntegrityError(`${task.what} is corrupt: cannot decompress (${why})`);
  if (error instanceof TarFormatError)
    return new IntegrityError(`${task.what} is not a valid tar stream: ${why}`);
  if (error instanceof PghaError || (error as Error).name === "AbortError") return error;
  if ((error as NodeJS.ErrnoException).code) return restoreWriteError(task.dest, error);
  return error;
}

function safePath(task: UnpackTask, name: string): string {
  const root = task.dest;
  const clean = name.replace(/\/+$/, "");
  const full = resolve(root, clean);
  if (isAbsolute(clean) || (full !== root && !full.startsWith(`${root}/`))) {
    throw new IntegrityError(`backup tar entry '${name}' points outside the target`);
  }
  // A tablespace location may be outside the target (tablespace-targets.ts): all that
  // lands there is PostgreSQL's version directory.
  if (task.tablespace && !VERSION_DIRECTORY.test(full.slice(root.length + 1).split("/")[0] ?? "")) {
    throw new IntegrityError(
      `${task.what} holds '${name}', which is outside the tablespace's version directory`,
    );
  }
  return full;
}

interface OpenFile {
  name: string;
  handle: FileHandle;
  hash: Hash;
  size: number;
}

/** Carries out the tar reader's events in the part's directory. */
class EntryWriter {
  private readonly made: Set<string>;
  private file: OpenFile | undefined;
  /** A planned entry: read past, or written block by block. */
  private current:
    | { skip: true }
    | { skip: false; name: string; sink: BlockSink; handle: FileHandle }
    | undefined;
  private readonly buffers = [
    Buffer.allocUnsafeSlow(WRITE_BYTES),
    Buffer.allocUnsafeSlow(WRITE_BYTES),
  ];
  /** The block sinks' buffers, made at the first planned entry written by blocks. */
  private scratch: BlockScratch | undefined;
  private which = 0;
  private fill = 0;
  /** The write of the other buffer. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly task: UnpackTask,
    private readonly events: UnpackEvents,
  ) {
    this.made = new Set([task.dest]);
  }

  readonly handle = async (event: TarEvent): Promise<void> => {
    switch (event.kind) {
      case "directory": {
        if (this.task.plan?.structure === false) return;
        const path = safePath(this.task, event.name);
        await this.makeDirectory(path);
        this.events.directory(path, event.mode);
        return;
      }
      case "symlink":
        if (this.task.plan?.structure === false) return;
        this.events.symlink(safePath(this.task, event.name), event.target);
        return;
      case "file": {
        const name = event.name.replace(/\/+$/, "");
        const path = safePath(this.task, writtenAs(name, this.task.tablespace === true));
        if (this.task.plan) return this.openPlanned(path, name);
        await this.makeDirectory(dirname(path));
        // Permission bits only: no setuid, setgid or sticky bit comes from a repository.
        const handle = await open(path, "wx", event.mode & 0o777);
        this.file = { name, handle, hash: createHash("sha256"), size: 0 };
        return;
      }
      case "gap":
        if (this.current?.skip) return;
        if (!this.current)
          throw new IntegrityError(`${this.task.what}: '${this.file?.name}' was passed over`);
        this.current.sink.gap(event.length);
        return;
      case "data":
        if (this.current?.skip) return;
        if (this.current) this.current.sink.take(event.bytes);
        else await this.take(event.bytes);
        return;
      case "file-end":
        if (this.current) await this.closePlanned();
        else await this.closeFile();
        return;
      case "other":
        throw new IntegrityError(
          `${this.task.what} holds an unexpected entry '${event.name}' (type '${event.type}')`,
        );
    }
  };

  /**
   * The offset in the current file's data of the next byte needed (TarReader.neededFrom):
   * none of a file that is read past, the next wanted block of one written block by block,
   * every byte of one written whole.
   */
  readonly wantFrom = (): number => {
    if (this.current?.skip) return Number.POSITIVE_INFINITY;
    if (this.current) return this.current.sink.wantFrom();
    return 0;
  };

  /** A planned entry: its file exists, or is made now (`create`). */
  private async openPlanned(path: string, name: string): Promise<void> {
    const plan = this.task.plan?.entries.get(name);
    if (!plan) {
      this.current = { skip: true };
      return;
    }
    let handle: FileHandle;
    if (this.task.plan?.create) {
      await this.makeDirectory(dirname(path));
      // Several jobs may write blocks into the file: whichever comes first makes it.
      handle = await open(path, constants.O_RDWR | constants.O_CREAT, plan.mode & 0o777);
    } else handle = await open(path, "r+");
    if (plan.how === "whole") {
      this.file = { name, handle, hash: createHash("sha256"), size: 0 };
      return;
    }
    this.scratch ??= new BlockScratch();
    const sink = new BlockSink(handle, plan, `${this.task.what}: ${name}`, this.scratch);
    this.current = { skip: false, name, sink, handle };
  }

  private async closePlanned(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    if (!current || current.skip) return;
    let count: number;
    try {
      count = current.sink.end();
    } finally {
      await current.handle.close();
    }
    this.events.blocks?.(current.name, count);
  }

  private async makeDirectory(path: string): Promise<void> {
    if (this.made.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o700 });
    this.made.add(path);
  }

  private async take(bytes: Uint8Array): Promise<void> {
    const file = this.file as OpenFile;
    file.hash.update(bytes);
    file.size += bytes.length;
    let rest = bytes;
    while (rest.length > 0) {
      const buffer = this.buffers[this.which] as Buffer;
      const take = Math.min(rest.length, buffer.length - this.fill);
      buffer.set(rest.subarray(0, take), this.fill);
      this.fill += take;
      rest = rest.subarray(take);
      if (this.fill === buffer.length) await this.flush(file.handle);
    }
  }

  /** Starts writing the filled buffer once the other one is written, and switches. */
  private async flush(handle: FileHandle): Promise<void> {
    await this.writing;
    const full = (this.buffers[this.which] as Buffer).subarray(0, this.fill);
    this.writing = writeAll(handle, full);
    this.writing.catch(() => undefined); // awaited before the next write or the close
    this.which ^= 1;
    this.fill = 0;
  }

  private async closeFile(): Promise<void> {
    const file = this.file as OpenFile;
    this.file = undefined;
    try {
      if (this.fill > 0) await this.flush(file.handle);
      await this.writing;
    } finally {
      this.writing = Promise.resolve();
      await file.handle.close();
    }
    this.events.file(file.name, file.size, file.hash.digest("hex"));
  }

  /** After a failure: nothing is left writing, and the open file is closed. */
  async abandon(): Promise<void> {
    await this.writing.catch(() => undefined);
    this.writing = Promise.resolve();
    this.fill = 0;
    await this.file?.handle.close().catch(() => undefined);
    this.file = undefined;
    if (this.current && !this.current.skip)
      await this.current.handle.close().catch(() => undefined);
    this.current = undefined;
  }
}
