/**
 * Recipients (who can read: public keys or a passphrase) and identities (what reads:
 * secret keys or a passphrase): parsing them from text, wrapping a file key for the
 * recipients, and finding the file key a header holds for the identities.
 */
import { UsageError } from "../errors.js";
import { type ParsedHeader, type Stanza, verifyHeaderMac } from "./age-header.js";
import { failedAuthentication, NoMatchingIdentityError } from "./age-primitives.js";
import {
  DEFAULT_SCRYPT_LOG_N,
  DEFAULT_SCRYPT_MAX_LOG_N,
  SCRYPT_STANZA,
  unwrapScrypt,
  wrapScrypt,
} from "./scrypt-recipient.js";
import {
  decodeX25519PublicKey,
  decodeX25519SecretKey,
  encodeX25519PublicKey,
  encodeX25519SecretKey,
  generateX25519KeyPair,
  unwrapX25519,
  wrapX25519,
  X25519_STANZA,
  type X25519Unwrapper,
  x25519PublicKeyOf,
  x25519Unwrapper,
} from "./x25519-recipient.js";

export type AgeRecipient =
  | { type: "x25519"; publicKey: string }
  | { type: "scrypt"; passphrase: string; logN?: number };

export type AgeIdentity =
  | { type: "x25519"; secretKey: string }
  | { type: "scrypt"; passphrase: string; maxLogN?: number };

const KEYGEN_HINT =
  "generate a key pair with age-keygen (or pgha), and give its 'age1...' public key";

export function generateX25519Identity(): { secretKey: string; publicKey: string } {
  const pair = generateX25519KeyPair();
  return {
    secretKey: encodeX25519SecretKey(pair.secret),
    publicKey: encodeX25519PublicKey(pair.public),
  };
}

function secretKeyBytes(secretKey: string): Buffer {
  const raw = decodeX25519SecretKey(secretKey);
  if (raw === null) {
    throw new UsageError(
      "not an age secret key (expected 'AGE-SECRET-KEY-1' and 58 more characters)",
      "use a key file written by age-keygen; the key is not printed here",
    );
  }
  return raw;
}

/** The "age1..." public key of an "AGE-SECRET-KEY-1..." secret key. */
export function publicKeyOf(secretKey: string): string {
  return encodeX25519PublicKey(x25519PublicKeyOf(secretKeyBytes(secretKey)));
}

/** An "age1..." public key as a recipient; UsageError with a hint on anything else. */
export function parseRecipient(text: string): AgeRecipient {
  const key = text.trim();
  if (decodeX25519PublicKey(key) !== null) return { type: "x25519", publicKey: key };
  if (/^AGE-SECRET-KEY-1/i.test(key)) {
    throw new UsageError(
      "a secret key was given where a recipient (public key) belongs",
      "give the public key ('age-keygen -y KEYFILE' prints it); the secret key stays on the hosts that read",
    );
  }
  if (/^(ssh-|ecdsa-)/.test(key)) {
    throw new UsageError("SSH keys are not supported as age recipients", KEYGEN_HINT);
  }
  if (/^age1/i.test(key)) {
    throw new UsageError("malformed age public key (bad length, case or checksum)", KEYGEN_HINT);
  }
  throw new UsageError("not an age public key (expected 'age1...')", KEYGEN_HINT);
}

/**
 * The identities of an age-keygen identity file: one AGE-SECRET-KEY-1 key a line, '#'
 * comments and blank lines ignored. A line that is not a key is a UsageError naming its
 * line number only (it may hold a secret).
 */
export function parseIdentityFile(text: string): AgeIdentity[] {
  const identities: AgeIdentity[] = [];
  const lines = text.split("\n");
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (decodeX25519SecretKey(line) === null) {
      throw new UsageError(
        `identity file line ${index + 1} is not an age secret key (AGE-SECRET-KEY-1...)`,
        /^AGE-PLUGIN-/.test(line)
          ? "age plugin identities are not supported"
          : "an identity file holds the lines age-keygen writes: comments and AGE-SECRET-KEY-1 keys",
      );
    }
    identities.push({ type: "x25519", secretKey: line });
  }
  if (identities.length === 0) {
    throw new UsageError(
      "the identity file holds no age secret key",
      "write one with age-keygen -o FILE",
    );
  }
  return identities;
}

function publicKeyBytes(publicKey: string): Buffer {
  const raw = decodeX25519PublicKey(publicKey);
  if (raw !== null) return raw;
  parseRecipient(publicKey); // throws the UsageError that says what is wrong
  throw new UsageError("not an age public key (expected 'age1...')", KEYGEN_HINT);
}

function checkLogN(logN: number): number {
  if (!Number.isInteger(logN) || logN < 1 || logN > DEFAULT_SCRYPT_MAX_LOG_N) {
    throw new UsageError(
      `scrypt work factor ${logN} is out of range`,
      `use a whole number from 1 to ${DEFAULT_SCRYPT_MAX_LOG_N} (default ${DEFAULT_SCRYPT_LOG_N}); age refuses more`,
    );
  }
  return logN;
}

/** The stanzas that give each recipient the file key. */
export function wrapForRecipients(fileKey: Buffer, recipients: readonly AgeRecipient[]): Stanza[] {
  if (recipients.length === 0) {
    throw new UsageError("no age recipients to encrypt to", KEYGEN_HINT);
  }
  if (recipients.length > 1 && recipients.some((r) => r.type === "scrypt")) {
    throw new UsageError(
      "a passphrase cannot be combined with other recipients",
      "the age format allows a passphrase only as the only recipient: use public keys instead",
    );
  }
  return recipients.map((recipient) => {
    if (recipient.type === "scrypt") {
      if (recipient.passphrase === "") throw new UsageError("the passphrase is empty");
      return wrapScrypt(
        fileKey,
        recipient.passphrase,
        checkLogN(recipient.logN ?? DEFAULT_SCRYPT_LOG_N),
      );
    }
    return wrapX25519(fileKey, publicKeyBytes(recipient.publicKey));
  });
}

type Unwrapper =
  | { type: "x25519"; key: X25519Unwrapper }
  | { type: "scrypt"; passphrase: string; maxLogN: number };

// Key objects made from secret keys, kept for the next object read with the same key.
const unwrapperCache = new Map<string, X25519Unwrapper>();

function unwrapperOf(identity: AgeIdentity): Unwrapper {
  if (identity.type === "scrypt") {
    return {
      type: "scrypt",
      passphrase: identity.passphrase,
      maxLogN: identity.maxLogN ?? DEFAULT_SCRYPT_MAX_LOG_N,
    };
  }
  let key = unwrapperCache.get(identity.secretKey);
  if (key === undefined) {
    key = x25519Unwrapper(secretKeyBytes(identity.secretKey));
    if (unwrapperCache.size >= 16) unwrapperCache.clear();
    unwrapperCache.set(identity.secretKey, key);
  }
  return { type: "x25519", key };
}

/** Checks identities (UsageError on a malformed key) and readies them for unwrapping. */
export function prepareIdentities(identities: readonly AgeIdentity[]): Unwrapper[] {
  return identities.map(unwrapperOf);
}

/**
 * The file key of a parsed header, its MAC checked: IntegrityError on a malformed or
 * unauthenticated header, NoMatchingIdentityError when no identity opens any stanza.
 */
export function unwrapHeader(header: ParsedHeader, identities: readonly Unwrapper[]): Buffer {
  const { stanzas } = header;
  if (stanzas.length > 1 && stanzas.some((s) => s.type === SCRYPT_STANZA)) {
    throw failedAuthentication("an scrypt stanza is not the only stanza of the header");
  }
  for (const identity of identities) {
    for (const stanza of stanzas) {
      let fileKey: Buffer | null = null;
      if (identity.type === "x25519" && stanza.type === X25519_STANZA) {
        fileKey = unwrapX25519(stanza, identity.key);
      } else if (identity.type === "scrypt" && stanza.type === SCRYPT_STANZA) {
        fileKey = unwrapScrypt(stanza, identity.passphrase, identity.maxLogN);
      }
      if (fileKey !== null) {
        verifyHeaderMac(header, fileKey);
        return fileKey;
      }
    }
  }
  throw new NoMatchingIdentityError(
    stanzas.map((s) => s.type),
    identities.map((i) => (i.type === "x25519" ? "X25519 key" : "passphrase")),
  );
}
