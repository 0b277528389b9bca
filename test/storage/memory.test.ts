import { MemoryStore } from "../../src/storage/memory.js";
import { describeConformance } from "./conformance.js";

describeConformance(
  "memory",
  async () => ({ store: new MemoryStore(), cleanup: async () => undefined }),
  {
    atomicIfAbsent: true,
    largeBody: 12 * 1024 * 1024,
  },
);
