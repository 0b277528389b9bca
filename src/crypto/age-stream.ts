/**
 * The age payload (spec "Payload"): a 16-byte random nonce, then STREAM: the plaintext in
 * 64 KiB chunks, each sealed with ChaCha20-Poly1305 under HKDF-SHA-256(file key, salt
 * nonce, info "payload") and the 12-byte nonce counter (11 bytes big-endian) || last flag.
 * Only the last chunk may be short; it is empty only when the whole plaintext is.
 *
 * The streams hold at most one 64 KiB chunk (plus the header while it is read). A chunk
 * is sealed or opened only when it is known whether it is the last one: a full chunk
 * waits for the next byte or the end.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { MAX_HEADER_BYTES, type ParsedHeader, parseHeader } from "./age-header.js";
import { failedAuthentication, open, seal, TAG_BYTES } from "./age-primitives.js";

export const CHUNK_BYTES = 64 * 1024;
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
export const PAYLOAD_NONCE_BYTES = 16;

export function newPayloadNonce(): Buffer {
  return randomBytes(PAYLOAD_NONCE_BYTES);
}

export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fileKey, nonce, "payload", 32));
}

/** Payload bytes after the nonce for a plaintext of this length. */
export function sealedLength(plainLength: number): number {
  const chunks = Math.max(1, Math.ceil(plainLength / CHUNK_BYTES));
  return plainLength + chunks * TAG_BYTES;
}

/** The chunk nonce sequence: counter 0, 1, ... and the last flag on the final chunk. */
class ChunkNonces {
  private readonly nonce = Buffer.alloc(12);
  private counter = 0;
  /** Chunks done so far. */
  get count(): number {
    return this.counter;
  }
  /** The nonce for the next chunk (the same buffer each time: ciphers copy it). */
  next(last: boolean): Buffer {
    if (this.counter >= 2 ** 48) throw new RangeError("age: STREAM counter overflow");
    this.nonce.writeUIntBE(this.counter, 5, 6);
    this.nonce[11] = last ? 1 : 0;
    this.counter++;
    return this.nonce;
  }
}

/** Seals chunks in order; each result is ciphertext and tag (for the caller to place). */
export class ChunkSealer {
  private readonly nonces = new ChunkNonces();
  constructor(private readonly key: Buffer) {}
  seal(chunk: Uint8Array, last: boolean): [Buffer, Buffer] {
    return seal(this.key, this.nonces.next(last), chunk);
  }
}

/** Opens chunks in order; throws IntegrityError on the first that does not authenticate. */
export class ChunkOpener {
  private readonly nonces = new ChunkNonces();
  constructor(private readonly key: Buffer) {}
  get count(): number {
    return this.nonces.count;
  }
  /** sealed is one chunk's ciphertext and tag (at least the tag). */
  open(sealed: Uint8Array, last: boolean): Buffer {
    const index = this.nonces.count;
    if (sealed.length < TAG_BYTES) throw failedAuthentication("the payload is truncated");
    if (last && sealed.length === TAG_BYTES && index > 0) {
      throw failedAuthentication("the payload ends with an empty chunk after a full one");
    }
    const split = sealed.length - TAG_BYTES;
    const plain = open(
      this.key,
      this.nonces.next(last),
      sealed.subarray(0, split),
      sealed.subarray(split),
    );
    if (plain === null) {
      throw failedAuthentication(
        `payload chunk ${index} does not authenticate${last ? " as the final chunk (truncated or extended?)" : ""}`,
      );
    }
    return plain;
  }
}

/** Writes the sealed payload of plain into out at offset (sealedLength(plain.length) bytes). */
export function sealPayloadInto(key: Buffer, plain: Uint8Array, out: Buffer, offset: number): void {
  const sealer = new ChunkSealer(key);
  let pos = offset;
  let start = 0;
  do {
    const end = Math.min(start + CHUNK_BYTES, plain.length);
    const [ciphertext, tag] = sealer.seal(plain.subarray(start, end), end === plain.length);
    pos += ciphertext.copy(out, pos);
    pos += tag.copy(out, pos);
    start = end;
  } while (start < plain.length);
}

/** The plaintext of a whole payload (after the nonce); throws IntegrityError. */
export function openPayload(key: Buffer, sealed: Uint8Array): Buffer {
  if (sealed.length === 0) throw failedAuthentication("the payload has no chunks (truncated)");
  const fullChunks = Math.floor(sealed.length / SEALED_CHUNK_BYTES);
  const rest = sealed.length % SEALED_CHUNK_BYTES;
  if (rest > 0 && rest < TAG_BYTES) throw failedAuthentication("the payload is truncated");
  const chunks = rest === 0 ? fullChunks : fullChunks + 1;
  const out = Buffer.allocUnsafe(sealed.length - chunks * TAG_BYTES);
  const opener = new ChunkOpener(key);
  let pos = 0;
  for (let i = 0; i < chunks; i++) {
    const start = i * SEALED_CHUNK_BYTES;
    const end = Math.min(start + SEALED_CHUNK_BYTES, sealed.length);
    pos += opener.open(sealed.subarray(start, end), i === chunks - 1).copy(out, pos);
  }
  return out;
}

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
  /** Bytes held before the payload chunks: the header, then the payload nonce. */
  private head: Buffer = Buffer.alloc(0);
  private headLength = 0;
  private headOwned = false;
  private state: "header" | "nonce" | "payload" = "header";
  /** Where the search for the header's "---" line resumes (each byte is searched once). */
  private footerFrom = 0;
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
  /** Appends chunk to the held bytes; they may still be the caller's buffer (see keep). */
  private hold(chunk: Buffer): Buffer {
    if (this.headLength === 0) {
      this.head = chunk;
      this.headOwned = false;
    } else {
      if (!this.headOwned || this.head.length - this.headLength < chunk.length) {
        const size = Math.max(2 * this.headLength, this.headLength + chunk.length, 4096);
        const grown = Buffer.allocUnsafeSlow(size);
        this.head.copy(grown, 0, 0, this.headLength);
        this.head = grown;
        this.headOwned = true;
      }
      chunk.copy(this.head, this.headLength);
    }
    this.headLength += chunk.length;
    return this.head.subarray(0, this.headLength);
  }
  /** Copies the held bytes out of the caller's buffer before _transform returns. */
  private keep(held: Buffer): void {
    if (!this.headOwned) {
      this.head = Buffer.allocUnsafeSlow(Math.max(held.length, 4096));
      held.copy(this.head);
      this.headOwned = true;
    } else if (held.byteOffset !== this.head.byteOffset) {
      this.head = Buffer.from(held); // after the header: keep the nonce's bytes only
    }
    this.headLength = held.length;
  }
  /**
   * Whether the header may be complete: a line starting with "---" has ended (its first
   * bytes are checked at once, so garbage fails early; re-parsing is gated by this to keep
   * a long header from being parsed again on every write).
   */
  private footerEnded(held: Buffer, first: boolean): boolean {
    if (first) return true;
    const at = held.indexOf("\n---", Math.max(0, this.footerFrom - 3));
    if (at < 0) {
      this.footerFrom = held.length;
      return false;
    }
    this.footerFrom = at;
    return held.indexOf(0x0a, at + 1) >= 0;
  }
  private consume(chunk: Buffer): void {
    if (this.chunker !== null) {
      this.chunker.write(chunk);
      return;
    }
    const first = this.headLength === 0;
    let held = this.hold(chunk);
    if (this.state === "header") {
      const header = this.footerEnded(held, first) ? parseHeader(held) : "incomplete";
      if (header === "incomplete") {
        if (held.length > MAX_HEADER_BYTES) throw failedAuthentication("header too long");
        this.keep(held);
        return;
      }
      this.fileKey = this.openHeader(header);
      held = held.subarray(header.headerBytes);
      this.state = "nonce";
    }
    if (held.length < PAYLOAD_NONCE_BYTES) {
      this.keep(held);
      return;
    }
    const opener = new ChunkOpener(
      payloadKey(this.fileKey as Buffer, held.subarray(0, PAYLOAD_NONCE_BYTES)),
    );
    this.state = "payload";
    this.chunker = new Chunker(SEALED_CHUNK_BYTES, (sealed, last) => {
      if (last && sealed.length === 0 && opener.count === 0) {
        throw failedAuthentication("the payload has no chunks (truncated)");
      }
      this.push(opener.open(sealed, last));
    });
    this.head = Buffer.alloc(0);
    this.headLength = 0;
    this.chunker.write(held.subarray(PAYLOAD_NONCE_BYTES));
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
