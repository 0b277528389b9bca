/**
 * A store that fails like a remote one: it passes every call to the store it wraps, but
 * first fails requests with a transient StorageError as its plan says. Used to test the
 * retry wrapper's logic (test/unit/retrying-store.test.ts, and the conformance suite behind
 * the wrapper); it models failures, it does not imitate S3.
 *
 * Like S3Store, its put runs its request(s) through PutOptions.retryRequest; a put whose
 * body is a stream is split into `parts` requests of the body's chunks, each one retried
 * on its own, so a streamed body is still read exactly once.
 */
import type { Readable } from "node:stream";
import { StorageError } from "../../src/errors.js";
import type * as Store from "../../src/storage/object-store.js";

export type FlakyOp = "head" | "get" | "put" | "part" | "list" | "delete" | "durable";

export interface FlakyPlan {
  /** Fail this request? `n` counts the requests of that kind, from 1. */
  fails(op: FlakyOp, n: number): boolean;
  /** A listing breaks after yielding this many entries (each call of list); undefined: never. */
  listBreaksAfter?: number;
}

export class FlakyStore implements Store.ObjectStore {
  readonly url: string;
  readonly capabilities: Store.StoreCapabilities;
  /** Requests made, by kind (failed ones included). */
  readonly requests: Record<FlakyOp, number> = {
    head: 0,
    get: 0,
    put: 0,
    part: 0,
    list: 0,
    delete: 0,
    durable: 0,
  };
  /** The `after` option of each list call. */
  readonly listCalls: (string | undefined)[] = [];

  constructor(
    private readonly inner: Store.ObjectStore,
    private readonly plan: FlakyPlan,
  ) {
    this.url = inner.url;
    this.capabilities = inner.capabilities;
  }

  private request(op: FlakyOp): void {
    this.requests[op]++;
    if (this.plan.fails(op, this.requests[op])) {
      throw new StorageError(`injected: ${op} request ${this.requests[op]} reset`, {
        transient: true,
      });
    }
  }

  async head(key: string): Promise<Store.ObjectInfo | undefined> {
    this.request("head");
    return this.inner.head(key);
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    this.request("get");
    return this.inner.get(key);
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.ObjectInfo> {
    const { retryRequest, ...rest } = options;
    const send = retryRequest ?? (<T>(_what: string, request: () => Promise<T>) => request());
    if (body instanceof Uint8Array) {
      return send(`PUT ${this.url}/${key}`, async () => {
        this.request("put");
        return this.inner.put(key, body, rest);
      });
    }
    // A stream: each chunk is a "part" request, retried alone; the body is read once.
    const parts: Buffer[] = [];
    for await (const chunk of body) {
      const part = Buffer.from(chunk as Uint8Array);
      await send(`part ${parts.length + 1} of ${this.url}/${key}`, async () => {
        this.request("part");
      });
      parts.push(part);
    }
    return send(`complete ${this.url}/${key}`, async () => {
      this.request("put");
      return this.inner.put(key, Buffer.concat(parts), rest);
    });
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    this.listCalls.push(options.after);
    this.request("list");
    let yielded = 0;
    for await (const entry of this.inner.list(prefix, options)) {
      if (yielded === this.plan.listBreaksAfter) {
        throw new StorageError("injected: listing broke", { transient: true });
      }
      yielded++;
      yield entry;
    }
  }

  async durable(key: string): Promise<void> {
    this.request("durable");
    return this.inner.durable(key);
  }

  async delete(key: string): Promise<void> {
    this.request("delete");
    return this.inner.delete(key);
  }
}
