/**
 * zstd without streams, for the backup and restore workers: every call consumes all of its
 * input before it returns (so the caller may reuse that buffer at once) and hands out the
 * output in buffers of a fixed size, which the caller may transfer to another thread. The
 * frames are the ones CompressStream writes (checksum flag on).
 */
import type * as Binding from "zstd-napi/binding.js";

type ZstdBinding = typeof Binding;
let loaded: ZstdBinding | undefined;

async function zstd(): Promise<ZstdBinding> {
  loaded ??= ((await import("zstd-napi/binding.js")) as unknown as { default: ZstdBinding })
    .default;
  return loaded;
}

/** Output buffers of this size are handed out (the last one of a frame may be shorter). */
export const OUTPUT_BYTES = 1 << 20;

/** The input of one of libzstd's own threads (its smallest job size). */
export const MT_JOB_BYTES = 512 << 10;

/**
 * Contexts no compressor or decompressor holds, per thread (each worker thread has its own
 * module state), by parameters. zstd-napi frees a context only when the garbage collector
 * finalizes its wrapper, and V8 does not know the memory behind it (about 3.7 MB for a
 * compression context at level 3, more at higher levels): a backup's jobs, one context per
 * bundle, held about 15 of them at once (36 MB) and more as the data grew. So a context is
 * given back when its bundle ends (`release`) and the next bundle reuses it.
 */
const idleCompression = new Map<string, Binding.CCtx[]>();
const idleDecompression: Binding.DCtx[] = [];
/** Idle contexts kept per parameters: a thread packs or unpacks one bundle at a time. */
const IDLE_KEPT = 2;

export interface ZstdOptions {
  level: number;
  /** libzstd's own worker threads (0: compress on the calling thread). */
  threads: number;
}

export class SyncCompressor {
  private output = Buffer.allocUnsafeSlow(OUTPUT_BYTES);
  private used = 0;
  /** Compressed bytes produced so far, handed out or not. */
  produced = 0;

  private released = false;

  private constructor(
    private readonly binding: ZstdBinding,
    private readonly cctx: Binding.CCtx,
    private readonly key: string,
  ) {}

  static async create(options: ZstdOptions): Promise<SyncCompressor> {
    const binding = await zstd();
    const key = `${options.level}/${options.threads}`;
    const idle = idleCompression.get(key)?.pop();
    if (idle) return new SyncCompressor(binding, idle, key);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, options.level);
    cctx.setParameter(binding.CParameter.checksumFlag, 1);
    if (options.threads > 0) {
      cctx.setParameter(binding.CParameter.nbWorkers, options.threads);
      // libzstd's default job (8 MiB at level 3) keeps several in memory per thread; its
      // smallest (512 KiB) lets frames of a few MiB keep every thread busy (frames.ts).
      cctx.setParameter(binding.CParameter.jobSize, MT_JOB_BYTES);
    }
    return new SyncCompressor(binding, cctx, key);
  }

  /**
   * Gives the context back for the next compressor of this thread (a frame not ended is
   * abandoned; the parameters stay). This compressor must not be used any more.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.cctx.reset(this.binding.ResetDirective.sessionOnly);
    const idle = idleCompression.get(this.key) ?? [];
    if (idle.length < IDLE_KEPT) idle.push(this.cctx);
    idleCompression.set(this.key, idle);
  }

  /** Compresses all of `input`; full output buffers go to `emit`. */
  write(input: Uint8Array, emit: (chunk: Buffer) => void): void {
    if (this.released) throw new Error("a released zstd compressor was written to");
    let rest = input;
    while (rest.length > 0) {
      const [, produced, consumed] = this.cctx.compressStream2(
        this.output.subarray(this.used),
        rest,
        this.binding.EndDirective.continue,
      );
      this.advance(produced, emit);
      rest = rest.subarray(consumed);
    }
  }

  /**
   * Ends the frame; the next write starts another. Its last bytes stay in the output
   * buffer (a frame's end is no reason to hand out a short buffer).
   */
  endFrame(emit: (chunk: Buffer) => void): void {
    if (this.released) throw new Error("a released zstd compressor was written to");
    const empty = new Uint8Array(0);
    for (;;) {
      const [remaining, produced] = this.cctx.compressStream2(
        this.output.subarray(this.used),
        empty,
        this.binding.EndDirective.end,
      );
      this.advance(produced, emit);
      if (remaining === 0) break;
    }
  }

  /** Ends the frame; the rest of the output goes to `emit`. */
  end(emit: (chunk: Buffer) => void): void {
    this.endFrame(emit);
    this.handOut(emit);
  }

  /** Hands out what is in the output buffer (after the end of a frame). */
  handOut(emit: (chunk: Buffer) => void): void {
    if (this.used > 0) {
      emit(this.output.subarray(0, this.used));
      this.output = Buffer.allocUnsafeSlow(OUTPUT_BYTES);
      this.used = 0;
    }
  }

  private advance(produced: number, emit: (chunk: Buffer) => void): void {
    this.used += produced;
    this.produced += produced;
    if (this.used < this.output.length) return;
    emit(this.output);
    this.output = Buffer.allocUnsafeSlow(OUTPUT_BYTES);
    this.used = 0;
  }
}

/** Corrupt compressed data (not a failure of whoever consumes the output). */
export class CorruptDataError extends Error {}

export class SyncDecompressor {
  private inFrame = false;
  private released = false;

  private constructor(
    private readonly binding: ZstdBinding,
    private readonly dctx: Binding.DCtx,
    /** Reused for every output: `consume` must be done with it when it resolves. */
    private readonly output: Buffer,
  ) {}

  static async create(): Promise<SyncDecompressor> {
    const binding = await zstd();
    return new SyncDecompressor(
      binding,
      idleDecompression.pop() ?? new binding.DCtx(),
      Buffer.allocUnsafeSlow(binding.dStreamOutSize()),
    );
  }

  /**
   * Gives the context back for the next decompressor of this thread (a frame not ended is
   * abandoned). This decompressor must not be used any more.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.dctx.reset(this.binding.ResetDirective.sessionOnly);
    if (idleDecompression.length < IDLE_KEPT) idleDecompression.push(this.dctx);
  }

  /**
   * Decompresses all of `input`, handing each piece of output to `consume` (a view of one
   * reused buffer, valid until consume resolves). Corrupt data throws CorruptDataError.
   */
  async write(input: Uint8Array, consume: (bytes: Uint8Array) => Promise<void>): Promise<void> {
    if (this.released) throw new Error("a released zstd decompressor was written to");
    let rest = input;
    for (;;) {
      let result: ReturnType<Binding.DCtx["decompressStream"]>;
      try {
        result = this.dctx.decompressStream(this.output, rest);
      } catch (error) {
        throw new CorruptDataError((error as Error).message);
      }
      const [remaining, produced, consumed] = result;
      rest = rest.subarray(consumed);
      if (produced > 0) await consume(this.output.subarray(0, produced));
      if (rest.length === 0 && (produced < this.output.length || remaining === 0)) {
        this.inFrame = remaining !== 0;
        return;
      }
    }
  }

  /** Whether the input so far ended exactly at the end of a frame. */
  get atFrameEnd(): boolean {
    return !this.inFrame;
  }

  /** Throws CorruptDataError when the input stopped inside a frame. */
  end(): void {
    if (this.inFrame) throw new CorruptDataError("the data ends in the middle of a zstd frame");
  }
}
