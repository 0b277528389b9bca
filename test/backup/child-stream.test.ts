/** programToStore: a program's whole output is stored, however fast the program exits. */
import { describe, expect, it } from "vitest";
import { objectStream, programToStore, storeToProgram } from "../../src/backup/child-stream.js";
import { IntegrityError, StorageError } from "../../src/errors.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { readAll } from "../../src/storage/streams.js";
import { BreakingStore, fakeClockPolicy } from "../helpers/breaking-store.js";

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

/** 50,000 zero bytes stored under "k" as a dump's object. */
function storedZeros(store: MemoryStore) {
  return programToStore(
    { program: "sh", args: ["-c", "head -c 50000 /dev/zero"], env: process.env, what: "zeros" },
    store,
    "k",
    { algorithm: "none" },
  );
}

describe("storeToProgram", () => {
  it("blames a download that failed past its retries, not the program that saw its input end", async () => {
    const inner = new BreakingStore(1000, 100);
    const object = await storedZeros(inner);
    const store = addRetries(inner, fakeClockPolicy(2_000));
    const failed = await storeToProgram(
      {
        // pg_restore's way: a short input is its error.
        program: "sh",
        args: ["-c", 'n=$(wc -c); [ "$n" -ge 50000 ] || { echo "end of file" >&2; exit 1; }'],
        env: process.env,
        what: "the reader",
      },
      store,
      object,
    ).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StorageError);
    expect((failed as StorageError).transient).toBe(true);
    expect((failed as Error).message).toMatch(/broke off 8 times in a row/);
  });
});

describe("objectStream of a dump object that goes while it is read", () => {
  it("is damage (exit 6) with what to do, not a storage failure", async () => {
    const inner = new BreakingStore(1, 100);
    const object = await storedZeros(inner);
    inner.beforeGet = async (n, key) => {
      if (n === 2) await inner.delete(key);
    };
    const { stream, verified } = await objectStream(
      addRetries(inner, fakeClockPolicy(2_000)),
      object,
    );
    await readAll(stream).catch(() => undefined);
    const failed = await verified.catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(IntegrityError);
    expect((failed as IntegrityError).message).toMatch(/went missing while it was read/);
    expect((failed as IntegrityError).hint).toMatch(/pgha verify/);
  });
});
