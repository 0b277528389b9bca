/**
 * Streaming encryption and decryption with bounded memory: at most one 64 KiB chunk is
 * held (plus the header while it is read). A chunk is sealed or opened only when it is
 * known whether it is the last one: a full chunk waits for the next byte or the end.
 */
import { Transform, type TransformCallback } from "node:stream";
import { failedAuthentication } from "./age-errors.js";
import { type ParsedHeader, parseHeader } from "./age-header.js";
import {
  CHUNK_BYTES,
  ChunkOpener,
  ChunkSealer,
  PAYLOAD_NONCE_BYTES,
  payloadKey,
  SEALED_CHUNK_BYTES,
} from "./age-stream.js";

/**
 * Collects input into fixed-size units, calling `emit(unit, last)` for each once it is
 * known whether more follows. A unit that lies whole inside one input buffer with more
 * bytes after it is handed over without copying.
 */
class Chunker {
  private readonly pending: Buffer;
  private filled = 0;
  constructor(
    private readonly size: number,
    private readonly emit: (unit: Buffer, last: boolean) => void,
  ) {
    this.pending = Buffer.allocUnsafe(size);
  }
  write(input: Buffer): void {
    let pos = 0;
    while (pos < input.length) {
      if (this.filled === this.size) {
        this.emit(this.pending, false);
        this.filled = 0;
      }
      if (this.filled === 0 && input.length - pos > this.size) {
        this.emit(input.subarray(pos, pos + this.size), false);
        pos += this.size;
        continue;
      }
      const n = Math.min(this.size - this.filled, input.length - pos);
      input.copy(this.pending, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
    }
  }
  end(): void {
    this.emit(this.pending.subarray(0, this.filled), true);
  }
}

export class EncryptTransform extends Transform {
  private prefix: Buffer | null;
  private readonly chunker: Chunker;
  /** header is the formatted age header; fileKey wraps into the payload key. */
  constructor(header: Buffer, fileKey: Buffer, nonce: Buffer) {
    super();
    this.prefix = Buffer.concat([header, nonce]);
    const sealer = new ChunkSealer(payloadKey(fileKey, nonce));
    this.chunker = new Chunker(CHUNK_BYTES, (chunk, last) => {
      const [ciphertext, tag] = sealer.seal(chunk, last);
      this.push(ciphertext);
      this.push(tag);
    });
  }
  private pushPrefix(): void {
    if (this.prefix !== null) {
      this.push(this.prefix);
      this.prefix = null;
    }
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pushPrefix();
    this.chunker.write(chunk);
    callback();
  }
  override _flush(callback: TransformCallback): void {
    this.pushPrefix();
    this.chunker.end();
    callback();
  }
}

/**
 * Pushes only plaintext whose chunk authenticated; fails the stream with IntegrityError on
 * the first chunk that does not, or at the end when the payload is truncated or extended.
 */
export class DecryptTransform extends Transform {
  private head: Buffer = Buffer.alloc(0);
  private state: "header" | "nonce" | "payload" = "header";
  private fileKey: Buffer | null = null;
  private chunker: Chunker | null = null;
  constructor(private readonly openHeader: (header: ParsedHeader) => Buffer) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
  private consume(chunk: Buffer): void {
    if (this.chunker !== null) {
      this.chunker.write(chunk);
      return;
    }
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    if (this.state === "header") {
      const header = parseHeader(this.head);
      if (header === "incomplete") return;
      this.fileKey = this.openHeader(header);
      this.head = this.head.subarray(header.headerBytes);
      this.state = "nonce";
    }
    if (this.head.length < PAYLOAD_NONCE_BYTES) return;
    const opener = new ChunkOpener(
      payloadKey(this.fileKey as Buffer, this.head.subarray(0, PAYLOAD_NONCE_BYTES)),
    );
    this.state = "payload";
    this.chunker = new Chunker(SEALED_CHUNK_BYTES, (sealed, last) => {
      if (last && sealed.length === 0 && opener.count === 0) {
        throw failedAuthentication("the payload has no chunks (truncated)");
      }
      this.push(opener.open(sealed, last));
    });
    const rest = this.head.subarray(PAYLOAD_NONCE_BYTES);
    this.head = Buffer.alloc(0);
    this.chunker.write(rest);
  }
  override _flush(callback: TransformCallback): void {
    try {
      if (this.chunker === null) {
        throw failedAuthentication(
          this.state === "header" ? "the header is truncated" : "the payload nonce is truncated",
        );
      }
      this.chunker.end();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}
