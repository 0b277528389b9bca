import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { FsStore } from "../../src/storage/fs.js";
import { describeConformance } from "./conformance.js";

describeConformance(
  "fs",
  async () => {
    const root = await mkdtemp(join(tmpdir(), "pgha-fs-"));
    return { store: new FsStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  {
    capabilities: { atomicIfAbsent: true, atomicReplace: true, durableWhenVisible: false },
    atomicIfAbsent: true,
    largeBody: 12 * 1024 * 1024,
  },
);

describe("FsStore specifics", () => {
  it("leaves no temporary file behind after a failed write", async () => {
    const root = await mkdtemp(join(tmpdir(), "pgha-fs-"));
    try {
      const store = new FsStore(root);
      async function* failing() {
        yield Buffer.from("partial");
        throw new Error("broken source");
      }
      await expect(store.put("d/k", Readable.from(failing()))).rejects.toThrow();
      expect(await readdir(join(root, "d"))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
