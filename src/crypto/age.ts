/**
 * The age file format (https://age-encryption.org/v1) in node:crypto: what pgha encrypts
 * its objects with, so that `age -d -i KEY` opens any of them without pgha. Only node
 * built-ins are imported (wal-push loads this on every segment).
 *
 * Failures: a malformed key or recipient is a UsageError (exit 2); a damaged, truncated,
 * extended or substituted file is an IntegrityError "failed authentication" (exit 6); no
 * identity opening any stanza is NoMatchingIdentityError (also exit 6).
 */
import { randomBytes } from "node:crypto";
import type { Transform } from "node:stream";
import { formatHeader, parseHeader } from "./age-header.js";
import {
  type AgeIdentity,
  type AgeRecipient,
  prepareIdentities,
  unwrapHeader,
  wrapForRecipients,
} from "./age-keys.js";
import { failedAuthentication } from "./age-primitives.js";
import {
  DecryptTransform,
  EncryptTransform,
  newPayloadNonce,
  openPayload,
  PAYLOAD_NONCE_BYTES,
  payloadKey,
  sealedLength,
  sealPayloadInto,
} from "./age-stream.js";

export { isAgeFile } from "./age-header.js";
export {
  type AgeIdentity,
  type AgeRecipient,
  generateX25519Identity,
  parseIdentityFile,
  parseRecipient,
  publicKeyOf,
} from "./age-keys.js";
export { NoMatchingIdentityError } from "./age-primitives.js";

const FILE_KEY_BYTES = 16;

/** A header for a new file key: what every encryption starts with. */
function newHeader(recipients: readonly AgeRecipient[]): { header: Buffer; fileKey: Buffer } {
  const fileKey = randomBytes(FILE_KEY_BYTES);
  return { header: formatHeader(wrapForRecipients(fileKey, recipients), fileKey), fileKey };
}

export function encryptBytes(plain: Uint8Array, recipients: readonly AgeRecipient[]): Buffer {
  const { header, fileKey } = newHeader(recipients);
  const nonce = newPayloadNonce();
  const out = Buffer.allocUnsafe(header.length + PAYLOAD_NONCE_BYTES + sealedLength(plain.length));
  header.copy(out, 0);
  nonce.copy(out, header.length);
  sealPayloadInto(payloadKey(fileKey, nonce), plain, out, header.length + PAYLOAD_NONCE_BYTES);
  return out;
}

export function decryptBytes(cipher: Uint8Array, identities: readonly AgeIdentity[]): Buffer {
  const unwrappers = prepareIdentities(identities);
  const header = parseHeader(cipher);
  if (header === "incomplete") throw failedAuthentication("the header is truncated");
  const fileKey = unwrapHeader(header, unwrappers);
  const payload = cipher.subarray(header.headerBytes);
  if (payload.length < PAYLOAD_NONCE_BYTES) {
    throw failedAuthentication("the payload nonce is truncated");
  }
  const key = payloadKey(fileKey, payload.subarray(0, PAYLOAD_NONCE_BYTES));
  return openPayload(key, payload.subarray(PAYLOAD_NONCE_BYTES));
}

/** A Transform from plaintext to an age file; holds at most one 64 KiB chunk. */
export function createEncryptStream(recipients: readonly AgeRecipient[]): Transform {
  const { header, fileKey } = newHeader(recipients);
  return new EncryptTransform(header, fileKey, newPayloadNonce());
}

/**
 * A Transform from an age file to its plaintext. It pushes only chunks that authenticated
 * and fails (IntegrityError) on the first that does not, and at the end unless the last
 * chunk was marked last: a consumer must treat what it got as void unless the stream ends
 * without error.
 */
export function createDecryptStream(identities: readonly AgeIdentity[]): Transform {
  const unwrappers = prepareIdentities(identities);
  return new DecryptTransform((header) => unwrapHeader(header, unwrappers));
}

export type AgeHeaderInfo = {
  /** Bytes of the header (through the MAC line): the payload nonce starts here. */
  headerBytes: number;
  stanzas: { type: string; args: string[] }[];
};

/**
 * The header at the start of an age file, or "incomplete" when prefix ends inside it
 * (read more). IntegrityError if it is not an age header or is malformed; the MAC is not
 * checked (that needs the file key).
 */
export function readHeader(prefix: Uint8Array): AgeHeaderInfo | "incomplete" {
  const header = parseHeader(prefix);
  if (header === "incomplete") return header;
  return {
    headerBytes: header.headerBytes,
    stanzas: header.stanzas.map((s) => ({ type: s.type, args: [...s.args] })),
  };
}

/**
 * A new header giving the same file key to other recipients: the file's bytes after
 * oldHeaderBytes (payload nonce and chunks) stay valid behind it unchanged. The old header
 * must authenticate under one of identities. What `pgha repo rekey` writes.
 */
export function rewrapHeader(
  cipherPrefix: Uint8Array,
  identities: readonly AgeIdentity[],
  recipients: readonly AgeRecipient[],
): { oldHeaderBytes: number; header: Buffer } {
  const unwrappers = prepareIdentities(identities);
  const old = parseHeader(cipherPrefix);
  if (old === "incomplete") throw failedAuthentication("the header is truncated");
  const fileKey = unwrapHeader(old, unwrappers);
  return {
    oldHeaderBytes: old.headerBytes,
    header: formatHeader(wrapForRecipients(fileKey, recipients), fileKey),
  };
}
