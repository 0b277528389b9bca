/**
 * Seekable compression of a backup's bundles: the tar stream is compressed as a run of
 * zstd frames of FRAME_RAW_BYTES each (the last one shorter), and the manifest lists each
 * frame's stored size (FORMAT.md, "Base backups"). Concatenated frames are one valid zstd
 * stream, so every reader that decompresses the object whole still reads it; a restore
 * that needs only some of a bundle's bytes (a chain member whose blocks newer backups
 * replaced) passes over the frames that hold none of them without decompressing them.
 *
 * Why 128 KiB: on pgbench data at level 3, frames of 128 KiB store about 7% more than one
 * frame per bundle (64 KiB: 11%, 1 MiB: 1.3%) and decompress faster (each frame's window
 * fits the cache); a frame holds 16 blocks of 8 KiB, few enough that an older member of a
 * chain has whole frames of blocks no restore of a later backup needs.
 */
import { MT_JOB_BYTES, type SyncCompressor } from "./zstd-sync.js";

export const FRAME_RAW_BYTES = 128 << 10;

/**
 * The frame size for a compressor with `threads` of libzstd's own threads: a frame is
 * compressed by at most one thread per MT_JOB_BYTES of it, so 128 KiB frames would leave
 * them idle. With threads (fewer jobs than cores), frames are larger: each thread's job
 * and the caller's, fewer frames a restore can pass over, but the backup keeps its speed.
 */
export function frameBytesFor(threads: number): number {
  return threads > 0 ? (threads + 1) * MT_JOB_BYTES : FRAME_RAW_BYTES;
}

/** A bundle's frames, as its manifest entry lists them. */
export interface FrameIndex {
  /** Bytes of tar stream in each frame but the last (which holds the rest). */
  raw: number;
  /** base64 of one uint32 LE per frame: its stored (compressed) size. */
  sizes: string;
}

/** SyncCompressor ending a frame every FRAME_RAW_BYTES of input, counting each frame. */
export class FramedCompressor {
  private inFrame = 0;
  private frameStart = 0;
  private readonly sizes: number[] = [];

  constructor(
    private readonly zstd: SyncCompressor,
    private readonly raw = FRAME_RAW_BYTES,
  ) {}

  write(input: Uint8Array, emit: (chunk: Buffer) => void): void {
    let rest = input;
    while (rest.length > 0) {
      const take = Math.min(rest.length, this.raw - this.inFrame);
      this.zstd.write(rest.subarray(0, take), emit);
      this.inFrame += take;
      rest = rest.subarray(take);
      if (this.inFrame === this.raw) this.endFrame(emit);
    }
  }

  end(emit: (chunk: Buffer) => void): void {
    if (this.inFrame > 0 || this.sizes.length === 0) this.endFrame(emit);
    this.zstd.handOut(emit);
  }

  /** The frames written (after `end`). */
  index(): FrameIndex {
    const sizes = Buffer.alloc(this.sizes.length * 4);
    for (const [i, size] of this.sizes.entries()) sizes.writeUInt32LE(size, i * 4);
    return { raw: this.raw, sizes: sizes.toString("base64") };
  }

  private endFrame(emit: (chunk: Buffer) => void): void {
    this.zstd.endFrame(emit);
    this.sizes.push(this.zstd.produced - this.frameStart);
    this.frameStart = this.zstd.produced;
    this.inFrame = 0;
  }
}

/** A frame of an object: where its stored bytes start and how many raw bytes it holds. */
export interface Frame {
  stored: number;
  raw: number;
}

/**
 * The frames of an object whose manifest entry lists them; null when it lists none (a
 * backup taken before frames, or stored uncompressed) or when the list does not add up to
 * the object (then it is read whole, as before, and its checksums judge it).
 */
export function framesOf(object: {
  compression: string;
  rawSize: number;
  storedSize: number;
  frames?: FrameIndex;
}): Frame[] | null {
  const index = object.frames;
  if (!index || object.compression !== "zstd") return null;
  if (!Number.isSafeInteger(index.raw) || index.raw <= 0 || typeof index.sizes !== "string")
    return null;
  const sizes = Buffer.from(index.sizes, "base64");
  const count = sizes.length / 4;
  if (!Number.isInteger(count) || count !== Math.max(1, Math.ceil(object.rawSize / index.raw)))
    return null;
  const frames: Frame[] = [];
  let stored = 0;
  for (let i = 0; i < count; i++) {
    const size = sizes.readUInt32LE(i * 4);
    if (size === 0) return null;
    frames.push({ stored: size, raw: Math.min(index.raw, object.rawSize - i * index.raw) });
    stored += size;
  }
  return stored === object.storedSize ? frames : null;
}
