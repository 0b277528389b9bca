/**
 * age's X25519 recipient type (spec "The X25519 recipient type"): "-> X25519 <ephemeral
 * share>", the file key wrapped under HKDF-SHA-256(shared secret, salt share || recipient,
 * "age-encryption.org/v1/X25519"). Keys are Bech32: "age1..." public keys and
 * "AGE-SECRET-KEY-1..." secret keys, 32 raw bytes each.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from "node:crypto";
import { UsageError } from "../errors.js";
import type { Stanza } from "./age-header.js";
import {
  decodeBase64,
  encodeBase64,
  failedAuthentication,
  TAG_BYTES,
  unwrapFileKey,
  wrapFileKey,
} from "./age-primitives.js";
import { decodeBech32, encodeBech32 } from "./bech32.js";

export const X25519_STANZA = "X25519";
const PUBLIC_HRP = "age";
const SECRET_HRP = "AGE-SECRET-KEY-";
const INFO = "age-encryption.org/v1/X25519";
const KEY_BYTES = 32;
// DER framing of a raw X25519 key (RFC 8410): node:crypto imports keys through it.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** The 32 bytes of an "age1..." public key, or null if text is not one. */
export function decodeX25519PublicKey(text: string): Buffer | null {
  const decoded = decodeBech32(text);
  return decoded?.hrp === PUBLIC_HRP && decoded.data.length === KEY_BYTES ? decoded.data : null;
}

/** The 32 bytes of an "AGE-SECRET-KEY-1..." secret key, or null if text is not one. */
export function decodeX25519SecretKey(text: string): Buffer | null {
  const decoded = decodeBech32(text);
  return decoded?.hrp === SECRET_HRP && decoded.data.length === KEY_BYTES ? decoded.data : null;
}

export function encodeX25519PublicKey(raw: Uint8Array): string {
  return encodeBech32(PUBLIC_HRP, raw);
}

export function encodeX25519SecretKey(raw: Uint8Array): string {
  return encodeBech32(SECRET_HRP, raw, true);
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw]),
    format: "der",
    type: "pkcs8",
  });
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" }).subarray(SPKI_PREFIX.length);
}

export function generateX25519KeyPair(): { secret: Buffer; public: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return {
    secret: privateKey.export({ type: "pkcs8", format: "der" }).subarray(PKCS8_PREFIX.length),
    public: rawPublicKey(publicKey),
  };
}

export function x25519PublicKeyOf(secret: Uint8Array): Buffer {
  return rawPublicKey(createPublicKey(privateKeyObject(secret)));
}

/** X25519(secret, public), refusing the all-zero result of a low-order point. */
function sharedSecret(secret: KeyObject, publicRaw: Uint8Array): Buffer | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: secret, publicKey: publicKeyObject(publicRaw) });
  } catch {
    return null; // OpenSSL refuses an all-zero result itself
  }
  return shared.every((b) => b === 0) ? null : shared;
}

function wrapKey(shared: Buffer, share: Uint8Array, recipient: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([share, recipient]), INFO, 32));
}

export function wrapX25519(fileKey: Uint8Array, recipient: Uint8Array): Stanza {
  const ephemeral = generateKeyPairSync("x25519");
  const share = rawPublicKey(ephemeral.publicKey);
  const shared = sharedSecret(ephemeral.privateKey, recipient);
  if (shared === null) {
    throw new UsageError(
      "the age public key is not usable (a low-order point)",
      "generate a key pair with age-keygen and give its public key",
    );
  }
  return {
    type: X25519_STANZA,
    args: [encodeBase64(share)],
    body: wrapFileKey(wrapKey(shared, share, recipient), fileKey),
  };
}

/** A decoded identity, ready for unwrapping (the key object is made once). */
export type X25519Unwrapper = { secret: KeyObject; publicRaw: Buffer };

export function x25519Unwrapper(secret: Uint8Array): X25519Unwrapper {
  const key = privateKeyObject(secret);
  return { secret: key, publicRaw: rawPublicKey(createPublicKey(key)) };
}

/**
 * The file key if this identity opens the stanza, null if the stanza is for another key;
 * throws IntegrityError on a malformed X25519 stanza.
 */
export function unwrapX25519(stanza: Stanza, identity: X25519Unwrapper): Buffer | null {
  const share = stanza.args.length === 1 ? decodeBase64(stanza.args[0] as string) : null;
  if (share === null || share.length !== KEY_BYTES) {
    throw failedAuthentication("malformed X25519 stanza in the header");
  }
  if (stanza.body.length !== 16 + TAG_BYTES) {
    throw failedAuthentication("malformed X25519 stanza in the header (file key size)");
  }
  const shared = sharedSecret(identity.secret, share);
  if (shared === null) throw failedAuthentication("X25519 stanza with a low-order share");
  return unwrapFileKey(wrapKey(shared, share, identity.publicRaw), stanza.body);
}
