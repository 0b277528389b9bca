/**
 * A store whose GET bodies break off as a connection reset does, and a retry policy on a
 * fake clock: for the tests of reads that must be retried as a whole (json-object.ts'
 * getJson, verify's digest, the restore facts' history files).
 */
import { Readable } from "node:stream";
import { MemoryStore } from "../../src/storage/memory.js";
import type * as Store from "../../src/storage/object-store.js";
import type { RetryPolicy } from "../../src/storage/retry.js";

/** A policy on a fake clock: sleeping advances it, nothing waits. */
export function fakeClockPolicy(totalMs: number): RetryPolicy {
  let now = 0;
  return {
    totalMs,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    random: () => 1,
  };
}

const reset = () => Object.assign(new Error("aborted"), { code: "ECONNRESET" });

/**
 * Its first `breaks` GETs hand over the first `cut` bytes of the body, then fail.
 * `when`: "read" fails once the reader asks for more (after it has the bytes);
 * "at-once" fails on the next tick, whether anyone reads or not (a small body, a fast
 * reset: the error comes while the reader is still awaiting something else).
 */
export class BreakingStore extends MemoryStore {
  gets = 0;
  /** Runs before GET number `n` (from 1) looks the key up: to delete or rewrite it meanwhile. */
  beforeGet: ((n: number, key: string) => Promise<void>) | undefined;
  constructor(
    private readonly breaks: number,
    private readonly cut: number,
    private readonly when: "read" | "at-once" = "read",
  ) {
    super();
  }

  override async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    await this.beforeGet?.(this.gets + 1, key);
    const got = await super.get(key);
    if (++this.gets > this.breaks) return got;
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) chunks.push(chunk as Buffer);
    const head = Buffer.concat(chunks).subarray(0, this.cut);
    if (this.when === "read") {
      async function* broken() {
        yield head;
        throw reset();
      }
      return { info: got.info, body: Readable.from(broken()) };
    }
    const body = new Readable({ read() {} });
    if (head.length > 0) body.push(head);
    process.nextTick(() => body.destroy(reset()));
    return { info: got.info, body };
  }
}
