/**
 * The whole ObjectStore contract through the retry wrapper over a store that fails every
 * third request and breaks every listing after 7 entries: the wrapper hides them all.
 */
import { MemoryStore } from "../../src/storage/memory.js";
import { defaultRetryPolicy } from "../../src/storage/retry.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { FlakyStore } from "../helpers/flaky-store.js";
import { describeConformance } from "../helpers/store-conformance.js";

describeConformance(
  "memory behind the retry wrapper, with transient failures",
  async () => {
    const flaky = new FlakyStore(new MemoryStore(), {
      fails: (_op, n) => n % 3 === 0,
      listBreaksAfter: 7,
    });
    const policy = { ...defaultRetryPolicy(60_000), sleep: async () => undefined };
    return { store: addRetries(flaky, policy), cleanup: async () => undefined };
  },
  {
    capabilities: { atomicIfAbsent: true, atomicReplace: true, durableWhenVisible: true },
    atomicIfAbsent: true,
    largeBody: 12 * 1024 * 1024,
  },
);
