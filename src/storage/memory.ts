/** In-memory ObjectStore for unit tests. Same contracts as the others (see object-store.ts). */
import { Readable } from "node:stream";
import { AlreadyExistsError, NotFoundError } from "../errors.js";
import type * as Store from "./object-store.js";
import { assertValidKey, assertValidMetadata, compareKeys } from "./object-store.js";
import { readAll } from "./streams.js";

interface Stored {
  data: Buffer;
  metadata: Record<string, string>;
  lastModified: Date;
}

export interface MemoryStoreOptions {
  /**
   * Behave like an S3 server that ignores If-None-Match (s3rver): put(ifAbsent) replaces an
   * existing object, and capabilities.atomicIfAbsent says false.
   */
  ignoreIfAbsent?: boolean;
}

export class MemoryStore implements Store.ObjectStore {
  readonly url: string;
  readonly capabilities: Store.StoreCapabilities;
  private readonly objects = new Map<string, Stored>();
  private readonly ignoreIfAbsent: boolean;

  constructor(name = "test", options: MemoryStoreOptions = {}) {
    this.url = `memory://${name}`;
    this.ignoreIfAbsent = options.ignoreIfAbsent === true;
    this.capabilities = {
      atomicIfAbsent: !this.ignoreIfAbsent,
      atomicReplace: true,
      durableWhenVisible: true,
    };
  }

  async head(key: string): Promise<Store.ObjectInfo | undefined> {
    assertValidKey(key);
    const stored = this.objects.get(key);
    return stored && { key, size: stored.data.length, metadata: { ...stored.metadata } };
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    const info = await this.head(key);
    const stored = this.objects.get(key);
    if (!info || !stored) throw new NotFoundError(`${this.url}/${key} does not exist`);
    return { info, body: Readable.from([Buffer.from(stored.data)]) };
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    assertValidKey(key);
    const metadata = { ...(options.metadata ?? {}) };
    assertValidMetadata(metadata);
    const data = body instanceof Uint8Array ? Buffer.from(body) : await readAll(body);
    if (options.ifAbsent && !this.ignoreIfAbsent && this.objects.has(key)) {
      throw new AlreadyExistsError(key);
    }
    this.objects.set(key, { data, metadata, lastModified: new Date() });
    return { key, size: data.length, metadata, verified: true };
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    const after = options.after;
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || compareKeys(k, after) > 0))
      .sort(compareKeys);
    for (const key of keys) {
      const stored = this.objects.get(key);
      if (stored) yield { key, size: stored.data.length, lastModified: stored.lastModified };
    }
  }

  async durable(key: string): Promise<void> {
    assertValidKey(key);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.objects.delete(key);
  }

  /** Test hook: replace stored bytes without touching metadata (simulates corruption). */
  corrupt(key: string, data: Uint8Array): void {
    const stored = this.objects.get(key);
    if (!stored) throw new NotFoundError(key);
    stored.data = Buffer.from(data);
  }
}
