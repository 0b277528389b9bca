/**
 * The age payload (spec "Payload"): a 16-byte random nonce, then STREAM: the plaintext in
 * 64 KiB chunks, each sealed with ChaCha20-Poly1305 under HKDF-SHA-256(file key, salt
 * nonce, info "payload") and the 12-byte nonce counter (11 bytes big-endian) || last flag.
 * Only the last chunk may be short; it is empty only when the whole plaintext is.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import { failedAuthentication } from "./age-errors.js";
import { open, seal, TAG_BYTES } from "./chacha20-poly1305.js";

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
