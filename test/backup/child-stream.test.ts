/** programToStore: a program's whole output is stored, however fast the program exits. */
import { describe, expect, it } from "vitest";
import { objectStream, programToStore } from "../../src/backup/child-stream.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { readAll } from "../../src/storage/streams.js";

describe("programToStore", () => {
  it.each([{ algorithm: "zstd", level: 3 }, { algorithm: "none" }] as const)(
    "keeps the output of a program that exits at once (%j)",
    async (compression) => {
      const store = new MemoryStore();
      // Node discards a child's unread stdout when it exits: the pipe must be read from the start.
      const object = await programToStore(
        { program: "sh", args: ["-c", "printf 'hello, world'"], env: process.env, what: "printf" },
        store,
        "k",
        compression,
      );
      expect(object.rawSize).toBe(12);
      const { stream, verified } = await objectStream(store, object);
      expect((await readAll(stream)).toString()).toBe("hello, world");
      await verified;
    },
  );
});
