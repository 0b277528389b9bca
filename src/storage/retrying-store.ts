/**
 * The ONE retry wrapper: an ObjectStore that retries transient StorageErrors of the store
 * it wraps, with one policy (retry.ts) and one --retry-timeout budget per operation.
 * openStore() returns every store wrapped; stores themselves never retry.
 *
 * - head, get, delete, durable: the call is retried as a whole. (get: until the body
 *   stream is handed over; a stream that breaks later is the caller's to retry, see
 *   retryAsWhole.)
 * - list: resumes after the last key it yielded (list order is ascending by contract);
 *   the budget counts from the last progress, so a long listing is not cut short.
 * - put: a streamed body cannot be replayed, so the wrapper hands the store a retry
 *   function (PutOptions.retryRequest) and the store retries each of its requests (one
 *   PUT, or each part of a multipart upload) on its own, each with its own budget.
 * - learnCapabilities (a probe: idempotent) is retried as a whole.
 * - resumingGet(store, key) gets a big immutable object (a backup's bundle, a dump) whose
 *   body survives a read that breaks off: see there.
 * - retryAsWhole(store, what, op) retries a multi-step operation (wal-fetch's download,
 *   decompression and verification) as a whole under the same policy. op gets the
 *   unwrapped store, so nothing inside it is retried a second time: retries never nest,
 *   and the budget is never multiplied.
 */
import type { Readable } from "node:stream";
import { IntegrityError, NotFoundError, StorageError } from "../errors.js";
import type * as Store from "./object-store.js";
import { type RetryPolicy, waitBeforeRetry, withRetry } from "./retry.js";
import { readFailure } from "./streams.js";

class RetryingStore implements Store.ObjectStore {
  readonly url: string;

  constructor(
    readonly inner: Store.ObjectStore,
    readonly policy: RetryPolicy,
  ) {
    this.url = inner.url;
  }

  /** The inner store's, also once it learned some (learnCapabilities). */
  get capabilities(): Store.StoreCapabilities {
    return this.inner.capabilities;
  }

  private readonly retryRequest: Store.RequestRetry = (what, request) =>
    withRetry(this.policy, what, request);

  head(key: string): Promise<Store.ObjectInfo | undefined> {
    return withRetry(this.policy, `HEAD ${this.url}/${key}`, () => this.inner.head(key));
  }

  get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    return withRetry(this.policy, `GET ${this.url}/${key}`, () => this.inner.get(key));
  }

  /** The inner store's, retried; absent where it has none. */
  get getFrom(): Store.ObjectStore["getFrom"] {
    const inner = this.inner;
    if (!inner.getFrom) return undefined;
    return (key: string, from: number) =>
      withRetry(this.policy, `GET ${this.url}/${key} from byte ${from}`, () =>
        (inner.getFrom as NonNullable<Store.ObjectStore["getFrom"]>).call(inner, key, from),
      );
  }

  put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    return this.inner.put(key, body, { ...options, retryRequest: this.retryRequest });
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    let after = options.after;
    let attempt = 1;
    let start = this.policy.now();
    for (;;) {
      try {
        for await (const entry of this.inner.list(prefix, after === undefined ? {} : { after })) {
          after = entry.key;
          attempt = 1;
          start = this.policy.now();
          yield entry;
        }
        return;
      } catch (error) {
        await waitBeforeRetry(this.policy, `LIST ${this.url}/${prefix}`, error, attempt, start);
        attempt++;
      }
    }
  }

  durable(key: string): Promise<void> {
    return withRetry(this.policy, `sync ${this.url}/${key}`, () => this.inner.durable(key));
  }

  delete(key: string): Promise<void> {
    return withRetry(this.policy, `DELETE ${this.url}/${key}`, () => this.inner.delete(key));
  }

  /** Local files only (fs): nothing to retry. */
  async listLeftovers(prefix: string, before: Date): Promise<Store.Leftover[]> {
    return (await this.inner.listLeftovers?.(prefix, before)) ?? [];
  }

  async deleteLeftover(leftover: Store.Leftover): Promise<void> {
    await this.inner.deleteLeftover?.(leftover);
  }

  /** The inner store's (an encryption wrapper's), retried as a whole; absent where it has none. */
  get encryptionMarker(): ((known?: boolean) => Promise<boolean>) | undefined {
    const inner = this.inner;
    if (!inner.encryptionMarker) return undefined;
    return (known?: boolean) =>
      withRetry(
        this.policy,
        `HEAD ${this.url} encryption marker`,
        () => inner.encryptionMarker?.(known) ?? Promise.resolve(false),
      );
  }

  get listedSizeFits(): ((listedSize: number, bodySize: number) => boolean) | undefined {
    return this.inner.listedSizeFits?.bind(this.inner);
  }

  async learnCapabilities(
    probeKey: string,
    known?: Partial<Store.StoreCapabilities>,
  ): Promise<Partial<Store.StoreCapabilities>> {
    const inner = this.inner;
    if (!inner.learnCapabilities) return {};
    return withRetry(
      this.policy,
      `probe ${this.url}/${probeKey}`,
      () => inner.learnCapabilities?.(probeKey, known) ?? Promise.resolve({}),
    );
  }
}

/** The store with retries (a store that has them already is returned as it is). */
export function addRetries(store: Store.ObjectStore, policy: RetryPolicy): Store.ObjectStore {
  return store instanceof RetryingStore ? store : new RetryingStore(store, policy);
}

/**
 * Runs op against the unwrapped store and retries it as a whole on a transient
 * StorageError, under the wrapper's policy: for operations that a broken connection can
 * interrupt midway, such as reading a body. Without a retry wrapper op runs once.
 */
export function retryAsWhole<T>(
  store: Store.ObjectStore,
  what: string,
  op: (store: Store.ObjectStore) => Promise<T>,
): Promise<T> {
  if (!(store instanceof RetryingStore)) return op(store);
  return withRetry(store.policy, what, () => op(store.inner));
}

/**
 * An object read by resumingGet changed between two of its GETs (its size or metadata):
 * it was rewritten under its key (a verify record, a pin), so the bytes had cannot be
 * joined to the new ones. Transient: reading it again as a whole gets the new one.
 */
export class ChangedWhileReadError extends StorageError {}

/**
 * What it means when an object that is never rewritten (a backup's or a dump's, which a
 * manifest lists) changed or went while resumingGet read it: damage, an IntegrityError
 * (exit 6); undefined for any other failure.
 */
export function damagedWhileRead(
  what: string,
  error: unknown,
  hint?: string,
): IntegrityError | undefined {
  if (error instanceof ChangedWhileReadError)
    return new IntegrityError(
      `${what} changed while it was read: pgha never rewrites it, something else wrote it`,
      hint,
    );
  if (error instanceof NotFoundError)
    return new IntegrityError(
      `${what} went missing while it was read, though its manifest lists it`,
      hint,
    );
  return undefined;
}

/**
 * GET of an object whose body goes on across reads that break off: a connection reset
 * after gigabytes of a restore made the whole command fail (a restore was kept for
 * `--delta`, a dump restore started over), and a read retried as a whole got no retry at
 * all once it had taken longer than --retry-timeout. The object is asked for again and
 * goes on from the first byte not yet handed on: a ranged GET where the store can
 * (getFrom: local files and S3), else the whole object again with the bytes already
 * handed on passed over (an encrypted repository's objects). The budget is the wrapper's
 * --retry-timeout, counted from the last byte the store sent or the moment the reader
 * last asked for more (as a listing resumes): a long download is not cut short by resets
 * spread over it, by a slow link reading again what it had, nor by a reader that took its
 * time; a connection that breaks FRUITLESS_READS times in a row before a new byte gives up.
 *
 * Joining is sound only for the same object: a new GET whose size or metadata differ
 * throws ChangedWhileReadError, and the caller's own count and checksum of the whole body,
 * which it must have, prove the rest. Not retried: a failure that is not the store's (an
 * encrypted body that failed authentication), "not found" (the object went meanwhile: the
 * caller says what that means), an error the reader threw in, and `signal`'s abort.
 * Without a retry wrapper the chunks are the first body's.
 */
export async function resumingGet(
  store: Store.ObjectStore,
  key: string,
  signal?: AbortSignal,
): Promise<{ info: Store.ObjectInfo; chunks: AsyncGenerator<Buffer> }> {
  const first = await store.get(key);
  // Until the reader starts, a body's failure is noted, not left to an 'error' event nobody
  // listens to (which would end the process); reading it then throws that failure.
  first.body.on("error", ignore);
  const closeFirst = () => first.body.destroy();
  if (!(store instanceof RetryingStore))
    return { info: first.info, chunks: closingOnReturn(chunksOf(first.body), closeFirst) };
  const { inner, policy } = store;
  const what = `${store.url}/${key}`;
  // In any key order (keys are unique: sorting the entries sorts by key).
  const metadataOf = (info: Store.ObjectInfo) =>
    JSON.stringify(Object.entries(info.metadata).sort());
  const firstMetadata = metadataOf(first.info);
  const sameObject = (info: Store.ObjectInfo) =>
    info.size === first.info.size && metadataOf(info) === firstMetadata;
  async function* resumed(): AsyncGenerator<Buffer> {
    let body: Readable | undefined = first.body;
    /** Whether `body` is a range (its end must be the object's). */
    let ranged = false;
    let pieces: AsyncIterator<unknown> | undefined;
    /** Bytes handed on, and of the current body those still to pass over. */
    let handed = 0;
    let skip = 0;
    let attempt = 1;
    let start = policy.now();
    /** Bodies in a row that broke before a new byte, and what was handed on when this began. */
    let fruitless = 0;
    let handedBefore = 0;
    const stop = () => body?.destroy();
    signal?.addEventListener("abort", stop);
    try {
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          signal?.throwIfAborted();
          if (!body) {
            // From where it broke where the store can (a range), else from the start.
            const again =
              inner.getFrom && handed > 0 && handed < first.info.size
                ? await inner.getFrom(key, handed)
                : { ...(await inner.get(key)), start: 0 };
            again.body.on("error", ignore);
            body = again.body;
            handedBefore = handed;
            if (!sameObject(again.info))
              throw new ChangedWhileReadError(`${what} changed while it was read`, {
                transient: true,
              });
            // A server that started past the byte asked for: one more break.
            if (again.start > handed)
              throw new Error(`the answer started at byte ${again.start}, past ${handed}`);
            skip = handed - again.start;
            ranged = again.start > 0;
          }
          pieces ??= body[Symbol.asyncIterator]();
          next = await pieces.next();
          // An aborted body may end as if whole: it is not.
          signal?.throwIfAborted();
          // A range that ends before the object does (a server may send less than asked
          // for: Content-Range says so), or a body asked for again that ends before the
          // bytes already had, is one more break, not the object's end.
          if (next.done && ranged && handed < first.info.size)
            throw new Error(`the range ended at byte ${handed} of ${first.info.size}`);
          if (next.done && skip > 0)
            throw new Error(`the body asked for again ended ${skip} bytes before byte ${handed}`);
        } catch (error) {
          // A body that broke (not a GET that failed: a store that does not answer is the
          // time budget's).
          const bodyBroke = body !== undefined;
          body?.destroy();
          body = undefined;
          pieces = undefined;
          signal?.throwIfAborted();
          if (error instanceof NotFoundError || error instanceof ChangedWhileReadError) throw error;
          if (bodyBroke && handed > 0 && handed === handedBefore && ++fruitless >= FRUITLESS_READS)
            throw new StorageError(
              `GET ${what} broke off ${fruitless} times in a row without a new byte (at byte ${handed}): ${(error as Error).message}`,
              {
                transient: true,
                cause: error,
                hint: "check the network to the storage: a connection that breaks that often cannot bring a big object whole",
              },
            );
          await waitBeforeRetry(policy, `GET ${what}`, readFailure(what, error), attempt, start);
          attempt++;
          continue;
        }
        if (next.done) return;
        let bytes = next.value as Buffer;
        if (skip > 0) {
          // Bytes read again are not new, but the store is answering: the budget is for a
          // store that does not (over a slow link, reading again a big object's first
          // part may take longer than the budget). Bodies that keep breaking before a new
          // byte are counted instead (FRUITLESS_READS).
          start = policy.now();
          const passed = Math.min(skip, bytes.length);
          skip -= passed;
          bytes = bytes.subarray(passed);
          if (bytes.length === 0) continue;
        }
        if (bytes.length > 0) fruitless = 0;
        handed += bytes.length;
        // Outside the try: an error the reader throws in here is not the store's.
        yield bytes;
        attempt = 1;
        start = policy.now();
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      body?.destroy();
    }
  }
  return { info: first.info, chunks: closingOnReturn(resumed(), closeFirst) };
}

/**
 * Bodies in a row that may break before reaching a new byte (the store keeps answering,
 * the connection keeps breaking) before resumingGet gives up.
 */
const FRUITLESS_READS = 8;

function ignore(): void {}

/** A body's chunks; it is destroyed when they end or the reader stops. */
async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield chunk as Buffer;
  } finally {
    body.destroy();
  }
}

/**
 * `chunks`, whose return() and throw() also run `close`: a generator never started does
 * not run its `finally` (the first body would stay open).
 */
function closingOnReturn(
  chunks: AsyncGenerator<Buffer>,
  close: () => void,
): AsyncGenerator<Buffer> {
  const wrapped = {
    next: (...args: [] | [unknown]) => chunks.next(...args),
    return: (value?: unknown) => {
      close();
      return chunks.return(value as undefined);
    },
    throw: (error?: unknown) => {
      close();
      return chunks.throw(error);
    },
    [Symbol.asyncIterator]() {
      return wrapped;
    },
  };
  return wrapped as unknown as AsyncGenerator<Buffer>;
}
