/** ChaCha20-Poly1305 (RFC 8439) one-shot seal/open through node:crypto. */
import { createCipheriv, createDecipheriv } from "node:crypto";

export const TAG_BYTES = 16;
const ALGORITHM = "chacha20-poly1305";
const OPTIONS = { authTagLength: TAG_BYTES } as const;

/** Ciphertext and tag as two buffers (the caller places them; no concatenation here). */
export function seal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): [Buffer, Buffer] {
  const cipher = createCipheriv(ALGORITHM, key, nonce, OPTIONS);
  const out = cipher.update(plain);
  cipher.final();
  return [out, cipher.getAuthTag()];
}

/** The plaintext, or null when the tag does not authenticate ciphertext under key/nonce. */
export function open(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Buffer | null {
  const decipher = createDecipheriv(ALGORITHM, key, nonce, OPTIONS);
  decipher.setAuthTag(tag);
  const out = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch {
    return null;
  }
  return out;
}

const ZERO_NONCE = Buffer.alloc(12);

/** A file key wrapped for a stanza body: sealed under a one-use key with a zero nonce. */
export function wrapFileKey(wrapKey: Uint8Array, fileKey: Uint8Array): Buffer {
  return Buffer.concat(seal(wrapKey, ZERO_NONCE, fileKey));
}

/** The file key in a stanza body, or null when wrapKey does not open it. */
export function unwrapFileKey(wrapKey: Uint8Array, body: Buffer): Buffer | null {
  const split = body.length - TAG_BYTES;
  return open(wrapKey, ZERO_NONCE, body.subarray(0, split), body.subarray(split));
}
