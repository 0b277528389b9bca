/**
 * The part of a store wrapper that adds nothing: every request goes to the store below
 * as it is. The encryption wrappers (encrypting-store.ts, plain-guard.ts) extend it and
 * override the requests that carry object bodies or refuse writes.
 */
import type * as Store from "./object-store.js";

export abstract class PassThroughStore implements Store.ObjectStore {
  readonly url: string;

  constructor(readonly inner: Store.ObjectStore) {
    this.url = inner.url;
  }

  get capabilities(): Store.StoreCapabilities {
    return this.inner.capabilities;
  }

  abstract head(key: string): Promise<Store.ObjectInfo | undefined>;
  abstract get(key: string): ReturnType<Store.ObjectStore["get"]>;
  abstract put(
    key: string,
    body: Store.PutBody,
    options?: Store.PutOptions,
  ): Promise<Store.StoredObject>;

  list(prefix: string, options?: Store.ListOptions): AsyncIterable<Store.ListEntry> {
    return this.inner.list(prefix, options);
  }

  durable(key: string): Promise<void> {
    return this.inner.durable(key);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  async listLeftovers(prefix: string, before: Date): Promise<Store.Leftover[]> {
    return (await this.inner.listLeftovers?.(prefix, before)) ?? [];
  }

  async deleteLeftover(leftover: Store.Leftover): Promise<void> {
    await this.inner.deleteLeftover?.(leftover);
  }

  async learnCapabilities(
    probeKey: string,
    known?: Partial<Store.StoreCapabilities>,
  ): Promise<Partial<Store.StoreCapabilities>> {
    return (await this.inner.learnCapabilities?.(probeKey, known)) ?? {};
  }
}
