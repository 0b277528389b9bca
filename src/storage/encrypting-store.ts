/**
 * The ONE encryption wrapper: an ObjectStore that encrypts every body it is given in the
 * age format (https://age-encryption.org/v1) and decrypts every body it reads, for a
 * repository with encryption settings (encryption-keys.ts). openStore() puts it directly
 * on the store, under the retry wrapper: everything above it (content metadata, manifests,
 * checksums of stored bytes, sizes in manifests) sees the bodies as they were before
 * encryption, so an object's body is exactly `age -e` of what an unencrypted repository
 * would hold (`age -d -i KEY | zstd -d` gives the file back).
 *
 * - Keys that stay plain (keys.ts isPlainKey: the marker, identity.json, locks, probes)
 *   pass through untouched.
 * - put: a buffer is encrypted at once, a stream through the codec's Transform (backup
 *   bundles come from job worker threads as stored bytes to the main thread, which owns
 *   the one store: they pass here like every other put). The metadata gains
 *   `pgha-encryption: age` and `pgha-recipients` (a fingerprint of the recipient set, for
 *   rekey). Before the first such put of the process the repository's marker is made
 *   sure of (encryption-marker.ts ensureMarker), or taken as known (encryptionMarker).
 * - get: the body is decrypted and authenticated chunk by chunk (a failure is an
 *   IntegrityError, exit 6), or in one call when it is read whole (readAll: DecryptedBody);
 *   an object without `pgha-encryption` metadata is refused, as is reading without an
 *   identity (a one-line UsageError).
 * - head and list show the stored sizes (what the storage bills); listedSizeFits tells
 *   whether a stored size fits a body size (verify).
 */
import { PassThrough, type Readable, type Transform } from "node:stream";
import {
  type AgeIdentity,
  createDecryptStream,
  createEncryptStream,
  decryptBytes,
  encryptBytes,
  NoMatchingIdentityError,
} from "../crypto/age.js";
import { IdentityMismatchError, IntegrityError, PghaError, UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  type EncryptionMarker,
  ensureMarker,
  firstDataKey,
  readMarker,
} from "../repository/encryption-marker.js";
import {
  ENCRYPTION_MARKER_KEY,
  ENCRYPTION_METADATA,
  isIdentityKey,
  isPlainKey,
  RECIPIENTS_METADATA,
  REPOSITORY_ENCRYPTION_METADATA,
} from "../repository/keys.js";
import { type EncryptionKeys, recipientsFingerprint } from "./encryption-keys.js";
import type * as Store from "./object-store.js";
import { PassThroughStore } from "./pass-through-store.js";
import { readAll, readFailure, type WholeReadable } from "./streams.js";

/** age's payload: a 16-byte nonce, then 64 KiB chunks each with a 16-byte tag (at least one). */
export function agePayloadSize(plainSize: number): number {
  const chunks = plainSize === 0 ? 1 : Math.ceil(plainSize / 65536);
  return 16 + plainSize + 16 * chunks;
}

/** A header of n X25519 stanzas: the version line, 98 bytes a stanza, the MAC line. */
const HEADER_BASE = 22 + 48;
const X25519_STANZA = 98;

export class EncryptingStore extends PassThroughStore {
  private writeReady: Promise<string[]> | undefined;
  private knownMarked: boolean | undefined;

  constructor(
    inner: Store.ObjectStore,
    /** The same store with retries, for the wrapper's own requests (the marker). */
    private readonly control: Store.ObjectStore,
    private readonly keys: EncryptionKeys,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    super(inner);
  }

  async encryptionMarker(known?: boolean): Promise<boolean> {
    if (known === true && this.keys.mode === "keys") this.knownMarked = true;
    if (this.knownMarked) return true;
    await this.recipients();
    return true;
  }

  /** The recipients of new objects, once the repository is known to be marked. */
  private recipients(): Promise<string[]> {
    this.writeReady ??= this.prepareWrites().catch((error: unknown) => {
      this.writeReady = undefined;
      throw error;
    });
    return this.writeReady;
  }

  private async prepareWrites(): Promise<string[]> {
    if (this.keys.mode === "keys") {
      const configured = await this.keys.configuredRecipients();
      if (this.knownMarked) return configured;
      const marker = await ensureMarker(this.control, "keys", configured, this.now());
      this.noteDifference(marker, configured);
      this.knownMarked = true;
      return configured;
    }
    // Passphrase mode: the repository key's public key, from the marker.
    let marker = await readMarker(this.control);
    if (!marker) {
      const data = await firstDataKey(this.control);
      if (data === undefined) {
        const publicKey = await this.keys.createRepositoryKey(this.control, this.now());
        marker = await ensureMarker(this.control, "passphrase", [publicKey], this.now());
      } else marker = await ensureMarker(this.control, "passphrase", [], this.now());
    }
    if (marker.mode !== "passphrase") {
      throw new UsageError(
        `the repository ${this.url} is encrypted to recipients, not with a passphrase`,
        "read it with encryption-identity-file, write it with encryption-recipients",
      );
    }
    this.knownMarked = true;
    return marker.recipients;
  }

  private noteDifference(marker: EncryptionMarker, configured: string[]): void {
    if (recipientsFingerprint(marker.recipients) === recipientsFingerprint(configured)) return;
    this.log.info(
      `new objects are encrypted to the configured recipients (${configured.length}), which differ from those ${this.url}/${ENCRYPTION_MARKER_KEY} records (${marker.recipients.length}); 'pgha repo rekey' rewraps the older objects and records the set`,
    );
  }

  head(key: string): Promise<Store.ObjectInfo | undefined> {
    return this.inner.head(key);
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    if (isPlainKey(key)) return this.inner.get(key);
    // The object first: an object that is not there is "not found" without the identity,
    // so a standby asking for WAL not archived yet does not unlock the repository key
    // (passphrase mode: a GET and about a second of scrypt) on every call. Once there is
    // an object, a missing or wrong identity fails as before, on its own line.
    const { info, body } = await this.inner.get(key);
    // The body may fail while the identity is read (a reset connection): noted here, not
    // left to an 'error' event nobody listens to (which would end the process).
    let broken: { error: unknown } | undefined;
    const note = (error: unknown) => {
      broken ??= { error };
    };
    body.on("error", note);
    let identities: AgeIdentity[];
    try {
      identities = await this.keys.identities(this.control);
    } catch (error) {
      body.destroy();
      throw error;
    } finally {
      body.off("error", note);
    }
    if (broken) {
      body.destroy();
      // The store's transient failure (a reset), which the retry wrapper retries: a plain
      // error here was an internal error (exit 70, wal-fetch 126 stopping recovery).
      throw readFailure(`${this.url}/${key}`, this.explain(key, broken.error));
    }
    if (info.metadata[ENCRYPTION_METADATA] !== "age") {
      body.destroy();
      throw new IntegrityError(
        `${this.url}/${key} is not encrypted, in a repository whose objects are`,
        "it was written by a pgha without encryption settings, or put there by someone else; pgha reads only objects that authenticate",
      );
    }
    return { info, body: new DecryptedBody(body, identities, (error) => this.explain(key, error)) };
  }

  /** A codec error, with the object's name. */
  private explain(key: string, error: unknown): Error {
    if (error instanceof NoMatchingIdentityError) {
      return new IdentityMismatchError(
        `cannot decrypt ${this.url}/${key}: ${error.message.replace(/^age: /, "")}`,
        "the identity file (or passphrase) must be one of the recipients the repository's objects are encrypted to (v1/encryption.json lists them)",
      );
    }
    if (error instanceof IntegrityError) {
      return new IntegrityError(
        `${this.url}/${key} failed authentication: ${error.message}`,
        "the object was modified or replaced after pgha wrote it (or the identity is not one of its recipients); it cannot be trusted",
      );
    }
    if (error instanceof PghaError) return error;
    return error instanceof Error ? error : new Error(String(error));
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    if (isIdentityKey(key)) {
      // Tells pgha without encryption settings that reads it that the repository is encrypted.
      const metadata = { ...options.metadata, [REPOSITORY_ENCRYPTION_METADATA]: "age" };
      return this.inner.put(key, body, { ...options, metadata });
    }
    if (isPlainKey(key)) return this.inner.put(key, body, options);
    const texts = await this.recipients();
    const recipients = this.keys.recipientsOf(texts);
    const metadata = {
      ...options.metadata,
      [ENCRYPTION_METADATA]: "age",
      [RECIPIENTS_METADATA]: recipientsFingerprint(texts),
    };
    if (body instanceof Uint8Array) {
      return this.inner.put(key, encryptBytes(body, recipients), { ...options, metadata });
    }
    const encrypt = createEncryptStream(recipients);
    body.on("error", (error) => encrypt.destroy(error));
    body.pipe(encrypt);
    try {
      return await this.inner.put(key, encrypt, { ...options, metadata });
    } catch (error) {
      // The store gave up early: the caller's body must not wait for a reader forever.
      encrypt.destroy();
      body.unpipe(encrypt);
      throw error;
    }
  }

  /**
   * An encrypted object of a body of n bytes is n plus age's payload overhead plus a
   * header of one or more X25519 stanzas (how many depends on the recipients it was
   * written or rekeyed to, which a listing cannot say).
   */
  listedSizeFits(listedSize: number, bodySize: number): boolean {
    const header = listedSize - agePayloadSize(bodySize) - HEADER_BASE;
    return header >= X25519_STANZA && header % X25519_STANZA === 0;
  }
}

/**
 * The decrypted body of one object. Read as a stream, the stored body goes through the
 * codec's decrypting Transform chunk by chunk (bounded memory), from the first read on.
 * Read whole before that (readAll: a WAL segment's wal-fetch, manifests), the stored body
 * is read into one buffer and decrypted in one call: for a 16 MiB segment about half the
 * time of the stream's 64 KiB pieces, their buffers and the copy that joins them.
 * Either way only authenticated bytes come out, and a failure names the object (explain).
 */
class DecryptedBody extends PassThrough implements WholeReadable {
  private mode: "idle" | "stream" | "whole" = "idle";
  private decrypt: Transform | undefined;

  constructor(
    private readonly stored: Readable,
    private readonly identities: AgeIdentity[],
    private readonly explain: (error: unknown) => Error,
  ) {
    super({ highWaterMark: 1 << 20 });
    stored.on("error", (error) => this.fail(error));
    // The consumer gave up: stop reading.
    this.on("close", () => {
      if (!this.readableEnded) {
        stored.destroy();
        this.decrypt?.destroy();
      }
    });
  }

  override _read(size: number): void {
    if (this.mode === "idle") {
      this.mode = "stream";
      const decrypt = createDecryptStream(this.identities);
      this.decrypt = decrypt;
      decrypt.on("error", (error) => this.fail(error));
      this.stored.pipe(decrypt).pipe(this);
    }
    super._read(size);
  }

  /** A failure while streaming ends the body with it; readWhole's caller gets its own. */
  private fail(error: unknown): void {
    if (this.mode === "whole" || this.destroyed) return;
    this.destroy(this.explain(error));
    this.stored.destroy();
    this.decrypt?.destroy();
  }

  async readWhole(): Promise<Buffer> {
    if (this.mode !== "idle") throw new Error("the body is already being read as a stream");
    this.mode = "whole";
    try {
      return decryptBytes(await readAll(this.stored), this.identities);
    } catch (error) {
      this.stored.destroy();
      throw this.explain(error);
    } finally {
      this.destroy();
    }
  }
}
