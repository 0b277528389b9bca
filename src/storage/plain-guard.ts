/**
 * The store of a pgha without encryption settings keeps out of an encrypted repository
 * (FORMAT.md, "Encryption"): openStore() puts this small wrapper (no crypto code: the
 * wal-push hot path loads it) directly on the store.
 *
 * - put of an object that an encrypted repository holds encrypted (keys.ts isPlainKey):
 *   refused (exit 3) when the repository's marker exists, looked for once per process
 *   (one HEAD) or taken as known (encryptionMarker: wal-push's repo facts).
 * - get of an object whose metadata says it is encrypted: a one-line UsageError instead
 *   of decompressing or parsing ciphertext.
 *
 * A cluster's identity.json, which every cold wal-push reads anyway, answers the marker
 * question without a request of its own: an encrypted repository's identity.json carries
 * `pgha-repository-encryption` metadata, and an encrypted pgha never marks a repository
 * that has an identity.json without it (encryption-marker.ts ensureMarker). A new
 * cluster's first push, which is about to write its identity.json, asks for the marker
 * (one HEAD) instead: the identity.json it wrote itself would say nothing.
 */
import type { Readable } from "node:stream";
import { RefusedError, UsageError } from "../errors.js";
import {
  ENCRYPTION_MARKER_KEY,
  ENCRYPTION_METADATA,
  isIdentityKey,
  isPlainKey,
  REPOSITORY_ENCRYPTION_METADATA,
} from "../repository/keys.js";
import type * as Store from "./object-store.js";
import { PassThroughStore } from "./pass-through-store.js";

export class PlainGuardStore extends PassThroughStore {
  private marked: Promise<boolean> | undefined;

  constructor(
    inner: Store.ObjectStore,
    /** The same store with retries, for the marker's HEAD. */
    private readonly control: Store.ObjectStore,
  ) {
    super(inner);
  }

  encryptionMarker(known?: boolean): Promise<boolean> {
    if (known !== undefined && this.marked === undefined) this.marked = Promise.resolve(known);
    this.marked ??= this.control.head(ENCRYPTION_MARKER_KEY).then((info) => info !== undefined);
    this.marked.catch(() => {
      this.marked = undefined;
    });
    return this.marked;
  }

  /** What an identity.json read says about the marker. */
  private observe(key: string, info: Store.ObjectInfo | undefined): void {
    if (info && isIdentityKey(key) && this.marked === undefined) {
      this.marked = Promise.resolve(info.metadata[REPOSITORY_ENCRYPTION_METADATA] !== undefined);
    }
  }

  async head(key: string): Promise<Store.ObjectInfo | undefined> {
    const info = await this.inner.head(key);
    this.observe(key, info);
    return info;
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    return this.checked(key, await this.inner.get(key));
  }

  /** The inner store's (a range of the same object), checked as get is; absent where it has none. */
  get getFrom(): Store.ObjectStore["getFrom"] {
    const inner = this.inner;
    if (!inner.getFrom) return undefined;
    return async (key: string, from: number) => {
      const found = await (inner.getFrom as NonNullable<Store.ObjectStore["getFrom"]>).call(
        inner,
        key,
        from,
      );
      return { ...this.checked(key, found), start: found.start };
    };
  }

  private checked(
    key: string,
    found: { info: Store.ObjectInfo; body: Readable },
  ): { info: Store.ObjectInfo; body: Readable } {
    this.observe(key, found.info);
    const scheme = found.info.metadata[ENCRYPTION_METADATA];
    if (scheme !== undefined && !isPlainKey(key)) {
      found.body.destroy();
      throw new UsageError(
        `${this.url}/${key} is encrypted (${scheme}), and no encryption settings are given`,
        "set encryption-identity-file (config file) or PGHA_ENCRYPTION_IDENTITY_FILE, or PGHA_ENCRYPTION_PASSPHRASE in passphrase mode, to read this repository",
      );
    }
    return found;
  }

  async put(
    key: string,
    body: Store.PutBody,
    options?: Store.PutOptions,
  ): Promise<Store.StoredObject> {
    // A cluster's first push writes its identity.json, which then says nothing about the
    // marker (observe): ask the repository itself before a new cluster starts in it.
    const unmarkedIdentity = isIdentityKey(key) && this.marked === undefined;
    if ((!isPlainKey(key) || unmarkedIdentity) && (await this.encryptionMarker())) {
      throw new RefusedError(
        `the repository ${this.url} is encrypted (${ENCRYPTION_MARKER_KEY}) and no encryption settings are given: nothing was written`,
        "set encryption-recipients (config file) or PGHA_ENCRYPTION_RECIPIENTS (or the passphrase in passphrase mode) as on the other hosts that write it",
      );
    }
    return this.inner.put(key, body, options);
  }
}
