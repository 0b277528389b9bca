/**
 * age's scrypt recipient type (spec "The scrypt recipient type"): "-> scrypt <salt> <logN>",
 * the file key wrapped under scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt,
 * N = 2^logN, r = 8, p = 1). An scrypt stanza must be the only stanza of a header.
 */
import { randomBytes, scryptSync } from "node:crypto";
import type { Stanza } from "./age-header.js";
import {
  decodeBase64,
  encodeBase64,
  failedAuthentication,
  TAG_BYTES,
  unwrapFileKey,
  wrapFileKey,
} from "./age-primitives.js";

export const SCRYPT_STANZA = "scrypt";
export const DEFAULT_SCRYPT_LOG_N = 18;
/** The reference implementation's default ceiling: a header cannot demand more work. */
export const DEFAULT_SCRYPT_MAX_LOG_N = 22;
const LABEL = Buffer.from("age-encryption.org/v1/scrypt", "latin1");
const SALT_BYTES = 16;
const R = 8;

function scryptKey(passphrase: string, salt: Uint8Array, logN: number): Buffer {
  const n = 2 ** logN;
  // node's default maxmem (32 MiB) is below what logN 18 needs (128 * r * N = 256 MiB).
  return scryptSync(passphrase, Buffer.concat([LABEL, salt]), 32, {
    N: n,
    r: R,
    p: 1,
    maxmem: 129 * R * n + (1 << 20),
  });
}

export function wrapScrypt(fileKey: Uint8Array, passphrase: string, logN: number): Stanza {
  const salt = randomBytes(SALT_BYTES);
  return {
    type: SCRYPT_STANZA,
    args: [encodeBase64(salt), String(logN)],
    body: wrapFileKey(scryptKey(passphrase, salt, logN), fileKey),
  };
}

/**
 * The file key if the passphrase opens the stanza, null if it does not; throws
 * IntegrityError on a malformed stanza or one whose work factor is above maxLogN.
 */
export function unwrapScrypt(stanza: Stanza, passphrase: string, maxLogN: number): Buffer | null {
  const [saltText, logNText] = stanza.args;
  const salt = stanza.args.length === 2 ? decodeBase64(saltText as string) : null;
  if (salt === null || salt.length !== SALT_BYTES || !/^[1-9][0-9]*$/.test(logNText ?? "")) {
    throw failedAuthentication("malformed scrypt stanza in the header");
  }
  const logN = Number(logNText);
  if (logN > maxLogN) {
    throw failedAuthentication(
      `the scrypt work factor 2^${logNText} is above the limit 2^${maxLogN}`,
    );
  }
  if (stanza.body.length !== 16 + TAG_BYTES) {
    throw failedAuthentication("malformed scrypt stanza in the header (file key size)");
  }
  return unwrapFileKey(scryptKey(passphrase, salt, logN), stanza.body);
}
