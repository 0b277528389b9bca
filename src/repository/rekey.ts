/**
 * `pgha repo rekey`: every encrypted object of the repository rewrapped to the configured
 * recipients (FORMAT.md, "Encryption": rotating keys). Works on the store without the
 * encryption layer (open-store.ts openRawStore): an object is read as stored, its age
 * header replaced by one that wraps the same file key for the new recipients, and the
 * whole object written again under the same key with the same payload bytes (objects are
 * immutable: no store can change a header in place), its metadata kept and
 * `pgha-recipients` set to the new set's fingerprint. Each object is replaced atomically
 * (local: rename; S3: one PUT), so an interrupted rekey leaves every object readable, with
 * the old header or the new one; running it again skips those whose fingerprint already
 * says the new set, and the marker is rewritten last.
 *
 * planRekey only reads (a listing and a HEAD an object); applyRekey writes.
 */
import { Readable } from "node:stream";
import { type AgeIdentity, type AgeRecipient, readHeader, rewrapHeader } from "../crypto/age.js";
import { IntegrityError, RefusedError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type EncryptionMarker, readMarker, writeMarker } from "./encryption-marker.js";
import { ENCRYPTION_METADATA, isPlainKey, RECIPIENTS_METADATA, REPOSITORY_PREFIX } from "./keys.js";

/** Metadata the encrypting store writes (encrypting-store.ts). */

/** The longest age header read before giving up (a header is ~100 bytes a recipient). */
const MAX_HEADER = 1 << 20;

export interface RekeyItem {
  key: string;
  size: number;
}

export interface RekeyPlan {
  marker: EncryptionMarker;
  recipients: string[];
  fingerprint: string;
  /** Objects whose recipients differ from the new set. */
  rewrap: RekeyItem[];
  /** Objects already encrypted to exactly the new set. */
  current: number;
  /** Objects that stay plain (marker, identity.json, locks, probes). */
  plain: number;
}

export async function planRekey(
  store: ObjectStore,
  recipients: string[],
  fingerprint: string,
): Promise<RekeyPlan> {
  const marker = await readMarker(store);
  if (!marker) {
    throw new RefusedError(
      `the repository ${store.url} is not encrypted (no v1/encryption.json): nothing to rekey`,
      "rekey rewraps the objects of an encrypted repository; an unencrypted one cannot be encrypted in place",
    );
  }
  const plan: RekeyPlan = { marker, recipients, fingerprint, rewrap: [], current: 0, plain: 0 };
  for await (const entry of store.list(REPOSITORY_PREFIX)) {
    if (isPlainKey(entry.key)) {
      plan.plain++;
      continue;
    }
    const info = await store.head(entry.key);
    if (!info) continue; // deleted meanwhile (prune)
    if (info.metadata[ENCRYPTION_METADATA] !== "age") {
      throw new IntegrityError(
        `${store.url}/${entry.key} is not encrypted, in an encrypted repository`,
        "it was not written by pgha with encryption settings; delete it or restore it from a copy before a rekey",
      );
    }
    if (info.metadata[RECIPIENTS_METADATA] === fingerprint) plan.current++;
    else plan.rewrap.push({ key: entry.key, size: info.size });
  }
  return plan;
}

export interface RekeyDeps {
  store: ObjectStore;
  identities: AgeIdentity[];
  recipients: AgeRecipient[];
  /** Objects rewrapped at once. */
  jobs: number;
  now: () => Date;
  onObject?: (key: string, outcome: "rewrapped" | "current" | "gone") => void;
}

/** Rewraps what the plan lists, then records the new recipients in the marker. */
export async function applyRekey(deps: RekeyDeps, plan: RekeyPlan): Promise<number> {
  let done = 0;
  let next = 0;
  const lane = async () => {
    for (;;) {
      const item = plan.rewrap[next++];
      if (!item) return;
      const outcome = await rewrapObject(deps, item.key, plan.fingerprint);
      if (outcome === "rewrapped") done++;
      deps.onObject?.(item.key, outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.jobs) }, lane));
  await writeMarker(deps.store, {
    ...plan.marker,
    recipients: plan.recipients,
    updatedAt: deps.now().toISOString(),
  });
  return done;
}

/** One object: read as stored, header replaced, written again whole. */
export async function rewrapObject(
  deps: Pick<RekeyDeps, "store" | "identities" | "recipients">,
  key: string,
  fingerprint: string,
): Promise<"rewrapped" | "current" | "gone"> {
  const { store } = deps;
  let got: Awaited<ReturnType<ObjectStore["get"]>>;
  try {
    got = await store.get(key);
  } catch (error) {
    if ((error as Error).name === "NotFoundError") return "gone";
    throw error;
  }
  const { info, body } = got;
  if (info.metadata[RECIPIENTS_METADATA] === fingerprint) {
    body.destroy();
    return "current";
  }
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let prefix = Buffer.alloc(0);
  let ended = false;
  while (readHeader(prefix) === "incomplete") {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    prefix = Buffer.concat([prefix, next.value]);
    if (prefix.length > MAX_HEADER) break;
  }
  if (readHeader(prefix) === "incomplete") {
    body.destroy();
    throw new IntegrityError(
      `${store.url}/${key} has no complete age header${ended ? "" : " in its first MiB"}`,
      "the object is damaged or not what pgha wrote; nothing was changed",
    );
  }
  let rewrapped: { oldHeaderBytes: number; header: Buffer };
  try {
    rewrapped = rewrapHeader(prefix, deps.identities, deps.recipients);
  } catch (error) {
    body.destroy();
    throw error instanceof IntegrityError
      ? new IntegrityError(`${store.url}/${key}: ${error.message}`, error.hint)
      : error;
  }
  const rest = prefix.subarray(rewrapped.oldHeaderBytes);
  async function* stream(): AsyncGenerator<Buffer> {
    yield rewrapped.header;
    if (rest.length > 0) yield rest;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const source = Readable.from(stream(), { objectMode: false });
  const expected = info.size - rewrapped.oldHeaderBytes + rewrapped.header.length;
  let stored: Awaited<ReturnType<ObjectStore["put"]>>;
  try {
    stored = await store.put(key, source, {
      metadata: { ...info.metadata, [RECIPIENTS_METADATA]: fingerprint },
    });
  } finally {
    body.destroy();
  }
  if (stored.size !== expected) {
    throw new IntegrityError(
      `${store.url}/${key} was stored with ${stored.size} bytes after its rekey, expected ${expected}`,
      "the object changed while it was rewrapped; run the rekey again",
    );
  }
  return "rewrapped";
}
