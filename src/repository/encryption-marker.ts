/**
 * The marker of an encrypted repository, v1/encryption.json (FORMAT.md, "Encryption"):
 * plain JSON that says the repository's objects are age-encrypted, and to which public
 * keys the last `pgha repo rekey` (or the first encrypted write) wrapped them. Written,
 * only if absent, before the first encrypted object; rewritten by rekey. A pgha without
 * encryption settings that finds it refuses to write (plain-guard.ts).
 *
 * Nothing in it is secret, and nothing in it is trusted for reading: every encrypted object
 * authenticates itself. Writers with recipients in their config encrypt to those, not to
 * the marker's; only passphrase mode takes its recipient (the repository key's public
 * key) from here.
 */
import { AlreadyExistsError, IntegrityError, NotFoundError, RefusedError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import {
  ENCRYPTION_KEY_KEY,
  ENCRYPTION_MARKER_KEY,
  isIdentityKey,
  isPlainKey,
  REPOSITORY_ENCRYPTION_METADATA,
  REPOSITORY_PREFIX,
} from "./keys.js";

export interface EncryptionMarker {
  format: 1;
  kind: "encryption";
  scheme: "age";
  /** keys: X25519 recipients from the config; passphrase: the repository key (ENCRYPTION_KEY_KEY). */
  mode: "keys" | "passphrase";
  /** The public keys (age1...) objects are encrypted to, as of `updatedAt`. */
  recipients: string[];
  createdAt: string;
  updatedAt: string;
}

export function encodeMarker(marker: EncryptionMarker): Buffer {
  return Buffer.from(`${JSON.stringify(marker, null, 2)}\n`);
}

export function parseMarker(url: string, text: string): EncryptionMarker {
  let value: Partial<EncryptionMarker>;
  try {
    value = JSON.parse(text) as Partial<EncryptionMarker>;
  } catch {
    value = {};
  }
  if (
    value.format !== 1 ||
    value.kind !== "encryption" ||
    value.scheme !== "age" ||
    (value.mode !== "keys" && value.mode !== "passphrase") ||
    !Array.isArray(value.recipients) ||
    !value.recipients.every((r) => typeof r === "string" && /^age1[0-9a-z]{58}$/.test(r)) ||
    typeof value.createdAt !== "string" ||
    typeof value.updatedAt !== "string"
  ) {
    throw new IntegrityError(
      `${url}/${ENCRYPTION_MARKER_KEY} is not a pgha encryption marker`,
      "it says the repository is encrypted; restore it from a copy, or write it again with 'pgha repo rekey --confirm'",
    );
  }
  return value as EncryptionMarker;
}

/** The whole body of key, or undefined when there is no such object. */
async function readIfThere(store: ObjectStore, key: string): Promise<Buffer | undefined> {
  try {
    return await readAll((await store.get(key)).body);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The marker, or undefined when the repository has none. */
export async function readMarker(store: ObjectStore): Promise<EncryptionMarker | undefined> {
  const body = await readIfThere(store, ENCRYPTION_MARKER_KEY);
  return body && parseMarker(store.url, body.toString("utf8"));
}

/**
 * The first object that shows the repository is not encrypted, if any: one that an
 * encrypted repository would hold encrypted, or an identity.json written without
 * encryption (plain-guard.ts trusts identity.json to tell).
 */
export async function firstDataKey(store: ObjectStore): Promise<string | undefined> {
  for await (const entry of store.list(REPOSITORY_PREFIX)) {
    if (isIdentityKey(entry.key)) {
      const info = await store.head(entry.key);
      if (info && info.metadata[REPOSITORY_ENCRYPTION_METADATA] === undefined) return entry.key;
    } else if (!isPlainKey(entry.key)) return entry.key;
  }
  return undefined;
}

/**
 * Makes sure the repository is marked encrypted before the first encrypted object goes in:
 * an existing marker is taken as it is; without one, a repository that already holds
 * objects is refused (they are not encrypted: FORMAT.md says how to move to encryption),
 * an empty one gets the marker (only if absent: of concurrent first writers one writes it).
 */
export async function ensureMarker(
  store: ObjectStore,
  mode: EncryptionMarker["mode"],
  recipients: string[],
  now: Date,
): Promise<EncryptionMarker> {
  const found = await readMarker(store);
  if (found) return found;
  const data = await firstDataKey(store);
  if (data !== undefined) {
    // An encrypted writer puts the marker before its first object: one that did so
    // between the two reads above (an archiver's first push beside a backup) is not a
    // repository of unencrypted objects.
    const meanwhile = await readMarker(store);
    if (meanwhile) return meanwhile;
    throw new RefusedError(
      `the repository ${store.url} holds unencrypted objects (${data}): pgha does not mix encrypted objects into it`,
      "give encrypted backups a new repository (another path or prefix) and keep this one until its backups expire, or unset the encryption settings",
    );
  }
  const marker: EncryptionMarker = {
    format: 1,
    kind: "encryption",
    scheme: "age",
    mode,
    recipients,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  try {
    await store.put(ENCRYPTION_MARKER_KEY, encodeMarker(marker), { ifAbsent: true });
    return marker;
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
    return (await readMarker(store)) ?? marker;
  }
}

/** Rekey's last step: the marker says the new recipients. */
export async function writeMarker(store: ObjectStore, marker: EncryptionMarker): Promise<void> {
  await store.put(ENCRYPTION_MARKER_KEY, encodeMarker(marker));
}

/** Passphrase mode's key object (age scrypt-encrypted X25519 identity), or undefined. */
export function readRepositoryKey(store: ObjectStore): Promise<Buffer | undefined> {
  return readIfThere(store, ENCRYPTION_KEY_KEY);
}
