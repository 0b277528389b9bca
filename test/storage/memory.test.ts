import { MemoryStore } from "../../src/storage/memory.js";
import { describeConformance } from "../helpers/store-conformance.js";

describeConformance(
  "memory",
  async () => ({ store: new MemoryStore(), cleanup: async () => undefined }),
  {
    capabilities: { atomicIfAbsent: true, atomicReplace: true, durableWhenVisible: true },
    atomicIfAbsent: true,
    largeBody: 12 * 1024 * 1024,
  },
);
