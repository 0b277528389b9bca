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
 *
 * Relation files get a block map (block-mapper.ts): each 8 KiB block is hashed as it
 * passes. In an incremental backup (`task.parents`), a relation file the parent mapped is
 * stored as its changed blocks (pack-changed-blocks.ts), or not at all when none changed;
 * another file of the parent's size is stored (whole, read again) only if its sha256
 * differs.
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import type { Compression } from "../compress/compression.js";
import { FramedCompressor, type FrameIndex, frameBytesFor } from "../compress/frames.js";
import { OUTPUT_BYTES, SyncCompressor } from "../compress/zstd-sync.js";
import { DEFAULT_INCR_WHOLE_PERCENT } from "../config/values.js";
import { describeSystemError, LocalIoError, PghaError } from "../errors.js";
import type { BackupFileEntry } from "../repository/backup-manifest.js";
import { isBlockMapped } from "./block-map.js";
import { isHot, packChangedBlocks, packHotFile, stillHot } from "./pack-changed-blocks.js";
import {
  type FileToPack,
  type PackedFile,
  type ParentFile,
  packWhole,
  type TarSink,
} from "./pack-file.js";
import { readWalkedSize } from "./read-walked-size.js";
import { Spool } from "./spool.js";
import { END_OF_ARCHIVE, encodeTarHeader } from "./tar-header.js";
import type { WalkEntry } from "./walk.js";

export type { FileToPack, ParentFile, TarSink };

const READ_BYTES = 1 << 20;

export interface PackTask {
  part: string;
  /** Absolute directory the entries' paths are relative to. */
  root: string;
  entries: WalkEntry[];
  compression: Compression;
  /** libzstd's own threads for this bundle (0: compress on the job's thread). */
  zstdThreads: number;
  /** This backup's index in `[...chain, id]` (0 for a full): what its block maps name. */
  chainIndex?: number;
  /** An incremental backup: the parent's entry of each of `entries` (null: not in it). */
  parents?: (ParentFile | null)[];
  /**
   * An incremental backup: the share of changed blocks (percent) from which a relation file
   * is stored whole (--backup-incr-whole; absent: its default).
   */
  wholePercent?: number;
}

export interface PackResult {
  files: BackupFileEntry[];
  /** Size of the tar stream. */
  rawSize: number;
  storedSize: number;
  storedSha256: string;
  /** The zstd frames of the stored bytes (compress/frames.ts); absent uncompressed. */
  frames?: FrameIndex;
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
  const zstd =
    task.compression.algorithm === "none"
      ? undefined
      : await SyncCompressor.create({ level: task.compression.level, threads: task.zstdThreads });
  try {
    return await packWith(task, sink, zstd);
  } finally {
    zstd?.release();
  }
}

async function packWith(
  task: PackTask,
  sink: PackSink,
  zstd: SyncCompressor | undefined,
): Promise<PackResult> {
  const framed = zstd && new FramedCompressor(zstd, frameBytesFor(task.zstdThreads));
  const encoder: Encoder = framed ?? new Copier();
  const storedHash = createHash("sha256");
  let rawSize = 0;
  let storedSize = 0;
  let ready: Buffer[] = [];
  const emit = (chunk: Buffer) => {
    storedHash.update(chunk);
    storedSize += chunk.length;
    ready.push(chunk);
  };
  const flush = async () => {
    const out = ready;
    ready = [];
    for (const chunk of out) await sink.output(chunk);
  };
  const tar: TarSink = {
    put: (bytes) => {
      rawSize += bytes.length;
      encoder.write(bytes, emit);
    },
    flush,
    progress: (bytes) => sink.progress(bytes),
  };

  const buffers = [Buffer.allocUnsafeSlow(READ_BYTES), Buffer.allocUnsafeSlow(READ_BYTES)] as const;
  const spool = task.parents ? new Spool() : undefined;
  const files: BackupFileEntry[] = [];
  try {
    for (const [at, entry] of task.entries.entries()) {
      if (entry.type === "directory" || entry.type === "symlink") {
        tar.put(
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
      const file: FileToPack = {
        entry,
        absPath: join(task.root, entry.path),
        mapped: isBlockMapped(task.part, entry.path),
        chainIndex: task.chainIndex ?? 0,
        parent: task.parents?.[at] ?? undefined,
      };
      const packed = await withFile(file.absPath, (handle) =>
        packFile(
          file,
          handle,
          buffers,
          tar,
          spool,
          task.wholePercent ?? DEFAULT_INCR_WHOLE_PERCENT,
        ),
      );
      if (packed === undefined) continue;
      files.push({
        part: task.part,
        path: entry.path,
        size: entry.size,
        mode: entry.mode,
        mtime: entry.mtime.toISOString(),
        ...packed,
      });
    }
  } finally {
    await spool?.close();
  }
  tar.put(END_OF_ARCHIVE);
  encoder.end(emit);
  await flush();
  return {
    files,
    rawSize,
    storedSize,
    storedSha256: storedHash.digest("hex"),
    ...(framed ? { frames: framed.index() } : {}),
  };
}

/** Runs `use` on the open file: undefined when it vanished before it was opened. */
async function withFile<T>(
  absPath: string,
  use: (handle: FileHandle) => Promise<T>,
): Promise<T | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(absPath, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  try {
    return await use(handle);
  } catch (error) {
    // A stop (another job failed) or the sink's failure keeps its own meaning.
    if (error instanceof PghaError || (error as Error).name === "AbortError") throw error;
    throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
      cause: error,
    });
  } finally {
    await handle.close();
  }
}

/** One file into the tar, whole, as a delta entry, or not at all. */
async function packFile(
  file: FileToPack,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
  spool: Spool | undefined,
  wholePercent: number,
): Promise<PackedFile> {
  const { entry, parent } = file;
  if (spool && parent && file.mapped && parent.blocks) {
    if (
      isHot(parent, wholePercent, entry.mtime.toISOString(), entry.size) &&
      (await stillHot(entry.size, parent.blocks, handle, buffers[0], wholePercent, entry.path))
    )
      return packHotFile(file, parent.blocks, handle, buffers, tar);
    return packChangedBlocks(file, parent.blocks, handle, buffers, tar, spool, wholePercent);
  }
  if (spool && parent && !file.mapped && parent.size === entry.size)
    return packIfChanged(file, parent, handle, buffers, tar);
  return packWhole(file, handle, buffers, tar);
}

/**
 * A file compared whole with the parent's copy (same size): read and hashed; stored whole
 * only if it differs, by a second read whose bytes the stored sha256 is taken from (a
 * file that changes between the reads is stored as the second read saw it).
 */
async function packIfChanged(
  file: FileToPack,
  parent: ParentFile,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
): Promise<PackedFile> {
  const hash = createHash("sha256");
  await readWalkedSize(file.entry.size, handle, buffers, async (chunk) => {
    hash.update(chunk);
  });
  const sha256 = hash.digest("hex");
  if (sha256 === parent.sha256) {
    tar.progress(file.entry.size);
    return { sha256, stored: "none", from: parent.holder };
  }
  return packWhole(file, handle, buffers, tar);
}
