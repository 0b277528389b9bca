/**
 * The primitives the rest of the codec shares: its errors, the base64 of age headers, and
 * ChaCha20-Poly1305 through node:crypto. (Few files: wal-push pays a few milliseconds of
 * start-up for every module file it loads.)
 *
 * Errors: everything that makes an age file unreadable with keys that fit it (a damaged
 * or malformed header, a wrong header MAC, a chunk whose tag fails, a truncated or
 * extended payload) is one IntegrityError saying "failed authentication": the bytes are
 * not what an encrypter with a recipient's key wrote.
 *
 * Base64: standard alphabet, no padding, canonical (unused trailing bits zero). Node's
 * decoder is lenient about all three, so decoding checks them.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { IntegrityError } from "../errors.js";

export function failedAuthentication(detail: string): IntegrityError {
  return new IntegrityError(
    `age: failed authentication: ${detail}`,
    "the object was damaged or modified after it was encrypted; restore it from another copy",
  );
}

/**
 * None of the identities unwraps any recipient stanza: the file was encrypted to other
 * keys (or its stanzas are damaged, which cannot be told apart). Exit 6 like every other
 * failed authentication: the data cannot be authenticated with the keys at hand, and
 * wal-fetch must fail closed on it rather than report "not available".
 */
export class NoMatchingIdentityError extends IntegrityError {
  readonly stanzaTypes: readonly string[];
  constructor(stanzaTypes: readonly string[], identityKinds: readonly string[]) {
    super(
      `age: no identity matches: the object is encrypted to ${describeStanzas(stanzaTypes)}, and the ${identityKinds.length === 0 ? "identity list is empty" : `identities given (${identityKinds.join(", ")}) unwrap none of them`}`,
      "use the identity file (or passphrase) of one of the recipients the object was encrypted to",
    );
    this.stanzaTypes = stanzaTypes;
  }
}

function describeStanzas(types: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const t of types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const parts = [...counts].map(([t, n]) =>
    t === "scrypt" ? "a passphrase" : `${n} ${t} key${n === 1 ? "" : "s"}`,
  );
  return parts.length === 0 ? "no recipient" : parts.join(" and ");
}

const ALPHABET = /^[A-Za-z0-9+/]*$/;

export function encodeBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    .toString("base64")
    .replace(/=+$/, "");
}

/** The decoded bytes, or null when text is not canonical unpadded base64. */
export function decodeBase64(text: string): Buffer | null {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return null;
  const data = Buffer.from(text, "base64");
  return encodeBase64(data) === text ? data : null;
}

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
