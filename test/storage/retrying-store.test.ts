/** The retry wrapper: one policy, one budget per operation, retries that never nest. */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, NotFoundError, StorageError } from "../../src/errors.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import type { RetryPolicy } from "../../src/storage/retry.js";
import { addRetries, retryAsWhole } from "../../src/storage/retrying-store.js";
import { readAll } from "../../src/storage/streams.js";
import { type FlakyPlan, FlakyStore } from "../helpers/flaky-store.js";

/** A policy on a fake clock: sleeping advances it, nothing waits. */
function fakePolicy(totalMs: number): RetryPolicy & { slept: number[]; clock: { now: number } } {
  const clock = { now: 0 };
  const slept: number[] = [];
  return {
    clock,
    slept,
    totalMs,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    now: () => clock.now,
    sleep: async (ms) => {
      slept.push(ms);
      clock.now += ms;
    },
    random: () => 1,
  };
}

const failFirst =
  (counts: Partial<Record<string, number>>): FlakyPlan["fails"] =>
  (op, n) =>
    n <= (counts[op] ?? 0);

async function keys(store: ObjectStore, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list(prefix)) out.push(entry.key);
  return out;
}

async function filled(n: number): Promise<MemoryStore> {
  const memory = new MemoryStore();
  for (let i = 0; i < n; i++) await memory.put(`k/${String(i).padStart(3, "0")}`, Buffer.from("x"));
  return memory;
}

describe("addRetries", () => {
  it("retries head, get and delete until they succeed", async () => {
    const memory = await filled(1);
    const flaky = new FlakyStore(memory, { fails: failFirst({ head: 2, get: 3, delete: 1 }) });
    const policy = fakePolicy(60_000);
    const store = addRetries(flaky, policy);
    expect((await store.head("k/000"))?.size).toBe(1);
    expect((await readAll((await store.get("k/000")).body)).toString()).toBe("x");
    await store.delete("k/000");
    expect(await memory.head("k/000")).toBeUndefined();
    expect(flaky.requests).toMatchObject({ head: 3, get: 4, delete: 2 });
    expect(policy.slept).toEqual([100, 200, 100, 200, 400, 100]);
  });

  it("gives up when the budget is spent and names the operation and the attempts", async () => {
    const policy = fakePolicy(2000);
    const store = addRetries(new FlakyStore(await filled(1), { fails: () => true }), policy);
    const error = await store.head("k/000").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(true);
    expect((error as Error).message).toMatch(
      /^HEAD memory:\/\/test\/k\/000 failed after 6 attempts in 2\.0s: injected/,
    );
    // The last attempt starts at the budget's end, not after it.
    expect(policy.clock.now).toBe(2000);
  });

  it("passes answers that are not transient failures through at once", async () => {
    const policy = fakePolicy(60_000);
    const store = addRetries(new FlakyStore(await filled(1), { fails: () => false }), policy);
    await expect(store.get("k/missing")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.put("k/000", Buffer.from("y"), { ifAbsent: true })).rejects.toBeInstanceOf(
      AlreadyExistsError,
    );
    expect(policy.slept).toEqual([]);
  });

  it("resumes a broken listing after the last key it yielded: no key twice, none lost", async () => {
    const memory = await filled(25);
    const flaky = new FlakyStore(memory, { fails: () => false, listBreaksAfter: 10 });
    const store = addRetries(flaky, fakePolicy(60_000));
    expect(await keys(store, "k/")).toEqual(await keys(memory, "k/"));
    expect(flaky.listCalls).toEqual([undefined, "k/009", "k/019"]);
  });

  it("counts a listing's budget from its last progress, not from its start", async () => {
    // Every list call breaks after 2 entries and the next two list requests fail: 700 ms
    // of backoff per 2 entries, over 6 s in all, with a budget of 1 s.
    let listRequests = 0;
    const flaky = new FlakyStore(await filled(20), {
      fails: (op) => op === "list" && listRequests++ % 3 !== 0,
      listBreaksAfter: 2,
    });
    const policy = fakePolicy(1000);
    expect(await keys(addRetries(flaky, policy), "k/")).toHaveLength(20);
    expect(policy.clock.now).toBeGreaterThan(1000);
  });

  it("retries each part of a streamed put on its own and reads the stream once", async () => {
    const memory = new MemoryStore();
    const flaky = new FlakyStore(memory, {
      fails: (op, n) => (op === "part" && (n === 2 || n === 3)) || (op === "put" && n === 1),
    });
    const policy = fakePolicy(60_000);
    const chunks = ["aa", "bb", "cc"].map((s) => Buffer.from(s));
    let reads = 0;
    const body = Readable.from(
      (async function* () {
        for (const chunk of chunks) {
          reads++;
          yield chunk;
        }
      })(),
    );
    const stored = await addRetries(flaky, policy).put("s/k", body, {
      metadata: { "pgha-x": "1" },
    });
    expect(stored.size).toBe(6);
    expect(reads).toBe(3);
    expect(flaky.requests).toMatchObject({ part: 5, put: 2 });
    // Each request starts its own backoff: part 2 (twice), then the completing put.
    expect(policy.slept).toEqual([100, 200, 100]);
    const got = await memory.get("s/k");
    expect((await readAll(got.body)).toString()).toBe("aabbcc");
    expect(got.info.metadata).toEqual({ "pgha-x": "1" });
  });

  it("is applied once, and shows the wrapped store's url and capabilities", async () => {
    const memory = new MemoryStore("x");
    const once = addRetries(memory, fakePolicy(1000));
    expect(addRetries(once, fakePolicy(5)) === once).toBe(true);
    expect(once.url).toBe("memory://x");
    expect(once.capabilities).toEqual(memory.capabilities);
  });
});

describe("retryAsWhole", () => {
  it("runs the operation on the unwrapped store and retries it as a whole", async () => {
    const flaky = new FlakyStore(await filled(1), { fails: () => false });
    const policy = fakePolicy(60_000);
    const store = addRetries(flaky, policy);
    let runs = 0;
    const result = await retryAsWhole(store, "fetch k", async (inner) => {
      expect(inner).toBe(flaky);
      runs++;
      if (runs < 3) throw new StorageError("body broke", { transient: true });
      return "done";
    });
    expect(result).toBe("done");
    expect(policy.slept).toEqual([100, 200]);
  });

  it("never nests retries: a failing request inside is retried only by the whole", async () => {
    const flaky = new FlakyStore(await filled(1), { fails: (op) => op === "get" });
    const policy = fakePolicy(2000);
    const error = await retryAsWhole(addRetries(flaky, policy), "fetch k", (inner) =>
      inner.get("k/000"),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^fetch k failed after 6 attempts in 2\.0s/);
    // One request per attempt: the get inside was not retried on its own.
    expect(flaky.requests.get).toBe(6);
    expect(policy.clock.now).toBe(2000);
  });

  it("runs once on a store without retries", async () => {
    const memory = new MemoryStore();
    let runs = 0;
    const error = await retryAsWhole(memory, "op", async () => {
      runs++;
      throw new StorageError("reset", { transient: true });
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe("reset");
    expect(runs).toBe(1);
  });
});
