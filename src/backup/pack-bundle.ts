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
 * Relation files get a block map (block-map.ts): each 8 KiB block is hashed as it passes.
 * In an incremental backup (`task.parents`), a relation file the parent mapped is stored
 * as a delta entry of the blocks whose hash differs from the parent's (or that lie past
 * the parent's size), or not at all when none do; another file of the parent's size is
 * stored (whole, read again) only if its sha256 differs. The changed blocks are kept in a
 * Spool while the file is read (the delta entry's tar header needs its size), so the
 * stored blocks are the hashed blocks.
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import type { Compression } from "../compress/compression.js";
import { OUTPUT_BYTES, SyncCompressor } from "../compress/zstd-sync.js";
import { describeSystemError, LocalIoError, PghaError } from "../errors.js";
import type { BackupFileEntry } from "../repository/backup-manifest.js";
import { BLOCK_HASH_BYTES, blockHash, encodeBlockMap, isBlockMapped } from "./block-map.js";
import { BLOCK_SIZE, blockCount, deltaEntrySize, encodeDeltaHead } from "./delta-entry.js";
import { Spool } from "./spool.js";
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
  /** This backup's index in `[...chain, id]` (0 for a full): what its block maps name. */
  chainIndex?: number;
  /** An incremental backup: the parent's entry of each of `entries` (null: not in it). */
  parents?: (ParentFile | null)[];
}

/** What an incremental backup compares a file with: its parent's manifest entry. */
export interface ParentFile {
  size: number;
  sha256: string;
  /** The backup whose bundles hold the file whole (the parent, or its `from`). */
  holder: string;
  /** The parent's block map (base64, as in the manifest), if it has one. */
  blocks?: { hashes: string; from: string };
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
        packFile(file, handle, buffers, tar, spool),
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
  return { files, rawSize, storedSize, storedSha256: storedHash.digest("hex") };
}

/** The tar stream of the bundle being packed. */
export interface TarSink {
  /** Puts tar bytes in; `bytes` may be reused once this returns. */
  put(bytes: Uint8Array): void;
  /** Hands what was compressed to the sink (waits while its window is full). */
  flush(): Promise<void>;
  progress(bytes: number): void;
}

export interface FileToPack {
  entry: WalkEntry;
  absPath: string;
  /** A relation file: gets a block map. */
  mapped: boolean;
  chainIndex: number;
  parent: ParentFile | undefined;
}

type PackedFile = Pick<BackupFileEntry, "sha256" | "stored" | "from" | "blocks">;

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
): Promise<PackedFile> {
  const { entry, parent } = file;
  if (spool && parent && file.mapped && parent.blocks)
    return packChangedBlocks(file, parent.blocks, handle, buffers, tar, spool);
  if (spool && parent && !file.mapped && parent.size === entry.size)
    return packIfChanged(file, parent, handle, buffers, tar);
  return packWhole(file, handle, buffers, tar);
}

/** The whole file into the tar (with its block map if it is a relation file). */
async function packWhole(
  file: FileToPack,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
): Promise<PackedFile> {
  const { entry } = file;
  const hash = createHash("sha256");
  const map = file.mapped ? new BlockMapper(entry.size, file.chainIndex) : undefined;
  tar.put(tarHeaderOf(entry, entry.size));
  await readWalkedSize(entry, handle, buffers, async (chunk) => {
    hash.update(chunk);
    await map?.write(chunk);
    tar.put(chunk);
    tar.progress(chunk.length);
    await tar.flush();
  });
  const pad = padding(entry.size);
  if (pad > 0) tar.put(ZEROS.subarray(0, pad));
  return { sha256: hash.digest("hex"), ...(map ? { blocks: map.end() } : {}) };
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
  await readWalkedSize(file.entry, handle, buffers, async (chunk) => {
    hash.update(chunk);
  });
  const sha256 = hash.digest("hex");
  if (sha256 === parent.sha256) {
    tar.progress(file.entry.size);
    return { sha256, stored: "none", from: parent.holder };
  }
  return packWhole(file, handle, buffers, tar);
}

/**
 * A relation file the parent mapped: its blocks hashed and compared with the parent's;
 * the changed ones, and those past the parent's size, into a delta entry. A file that
 * shrank keeps only the blocks of its new size (the entry says the size).
 *
 * A file of the parent's size is most often unchanged: it is read once and only its
 * blocks are hashed. If every block is the parent's, so is the file and its sha256 (the
 * parent's entry says it); if not, a second read takes the file's sha256 and must see the
 * same blocks, else (the file changed between the reads) it is read once more, hashing
 * blocks and file together, which is what a file of another size gets from the start.
 * (Exported for its test.)
 */
export async function packChangedBlocks(
  file: FileToPack,
  parentMap: { hashes: string; from: string },
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
  spool: Spool,
): Promise<PackedFile> {
  const { entry } = file;
  const parentSize = file.parent?.size;
  const parent = {
    hashes: Buffer.from(parentMap.hashes, "base64"),
    from: Buffer.from(parentMap.from, "base64"),
  };
  if (parent.hashes.length !== parent.from.length * BLOCK_HASH_BYTES)
    return packWhole(file, handle, buffers, tar); // not a map this pgha wrote: store it whole
  let probablyUnchanged = entry.size === parentSize;
  let progressed = false;
  for (;;) {
    const hash = probablyUnchanged ? undefined : createHash("sha256");
    const changed: number[] = [];
    spool.clear();
    const map = new BlockMapper(entry.size, file.chainIndex, async (block, bytes, digest) => {
      if (block < parent.from.length && digest.equals(hashOf(parent.hashes, block)))
        return parent.from[block] as number;
      changed.push(block);
      await spool.append(bytes);
      return file.chainIndex;
    });
    await readWalkedSize(entry, handle, buffers, async (chunk) => {
      hash?.update(chunk);
      await map.write(chunk);
      if (!progressed) tar.progress(chunk.length);
    });
    progressed = true;
    const blocks = map.end();
    if (changed.length === 0 && entry.size === parentSize && file.parent) {
      spool.clear();
      return { sha256: file.parent.sha256, stored: "none", blocks };
    }
    const sha256 = hash ? hash.digest("hex") : await hashIfSame(entry, handle, buffers, map);
    if (sha256 === undefined) {
      probablyUnchanged = false;
      continue;
    }
    const head = { blockSize: BLOCK_SIZE, fileSize: entry.size, blocks: Uint32Array.from(changed) };
    const size = deltaEntrySize(head);
    tar.put(tarHeaderOf(entry, size));
    tar.put(encodeDeltaHead(head));
    await drainInto(spool, buffers[0], tar);
    const pad = padding(size);
    if (pad > 0) tar.put(ZEROS.subarray(0, pad));
    return { sha256, stored: "blocks", blocks };
  }
}

/** The file's sha256 from another read, if every block reads as `first` saw it. */
async function hashIfSame(
  entry: WalkEntry,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  first: BlockMapper,
): Promise<string | undefined> {
  const hash = createHash("sha256");
  let same = true;
  const again = new BlockMapper(entry.size, 0, async (block, _bytes, digest) => {
    if (!digest.equals(first.hashOf(block))) same = false;
    return 0;
  });
  await readWalkedSize(entry, handle, buffers, async (chunk) => {
    hash.update(chunk);
    await again.write(chunk);
  });
  return same ? hash.digest("hex") : undefined;
}

function hashOf(hashes: Buffer, block: number): Buffer {
  return hashes.subarray(block * BLOCK_HASH_BYTES, (block + 1) * BLOCK_HASH_BYTES);
}

async function drainInto(spool: Spool, buffer: Buffer, tar: TarSink): Promise<void> {
  await spool.drain(buffer, async (bytes) => {
    tar.put(bytes);
    await tar.flush();
  });
}

function tarHeaderOf(entry: WalkEntry, size: number): Buffer {
  return encodeTarHeader({
    name: entry.path,
    type: "file",
    size,
    mode: entry.mode,
    mtime: entry.mtime,
  });
}

/**
 * Cuts a file's bytes, as they come in chunks of any length, into 8 KiB blocks (the last
 * one may be short), hashes each, and builds the map. `decide` says which backup holds a
 * block (default: this one); a block split across chunks is carried in a fixed buffer.
 */
class BlockMapper {
  private readonly hashes: Buffer;
  private readonly from: Uint8Array;
  private readonly carry = Buffer.allocUnsafe(BLOCK_SIZE);
  private carried = 0;
  private block = 0;

  constructor(
    private readonly size: number,
    private readonly chainIndex: number,
    private readonly decide?: (block: number, bytes: Uint8Array, digest: Buffer) => Promise<number>,
  ) {
    const count = blockCount(size);
    this.hashes = Buffer.alloc(count * BLOCK_HASH_BYTES);
    this.from = new Uint8Array(count);
  }

  /** Block `block`'s hash, once the block has passed. */
  hashOf(block: number): Buffer {
    return hashOf(this.hashes, block);
  }

  private lengthOf(block: number): number {
    return Math.min(BLOCK_SIZE, this.size - block * BLOCK_SIZE);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const length = this.lengthOf(this.block);
      if (length <= 0) return; // past the walked size: never, the reads stop there
      if (this.carried === 0 && rest.length >= length) {
        await this.finish(rest.subarray(0, length));
        rest = rest.subarray(length);
        continue;
      }
      const take = Math.min(rest.length, length - this.carried);
      this.carry.set(rest.subarray(0, take), this.carried);
      this.carried += take;
      rest = rest.subarray(take);
      if (this.carried === length) {
        this.carried = 0;
        await this.finish(this.carry.subarray(0, length));
      }
    }
  }

  private async finish(bytes: Uint8Array): Promise<void> {
    const block = this.block++;
    const digest = blockHash(bytes);
    digest.copy(this.hashes, block * BLOCK_HASH_BYTES);
    this.from[block] = this.decide ? await this.decide(block, bytes, digest) : this.chainIndex;
  }

  end() {
    if (this.block !== this.from.length || this.carried !== 0)
      throw new Error(`block map of ${this.size} bytes ended at block ${this.block}`);
    return encodeBlockMap({ hashes: this.hashes, from: this.from });
  }
}

/**
 * Reads the file's walked size in chunks, the next read running while `each` handles the
 * current chunk (which it may not keep once it resolves). A file that shrank reads as
 * zeros up to its walked size; one that grew is cut there.
 */
async function readWalkedSize(
  entry: WalkEntry,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  each: (chunk: Buffer) => Promise<void>,
): Promise<void> {
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
    await each(chunk);
  }
}
