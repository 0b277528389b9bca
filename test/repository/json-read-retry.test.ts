/**
 * A JSON document whose body breaks off (a connection reset in the middle of a manifest)
 * goes on where it broke within the retry budget (resumingGet), as a transient storage
 * failure, never taken for a damaged or missing document; `each` hands no element over
 * twice.
 */
import { describe, expect, it } from "vitest";
import { IntegrityError, StorageError } from "../../src/errors.js";
import { getJson, putJson } from "../../src/repository/json-object.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { BreakingStore, fakeClockPolicy } from "../helpers/breaking-store.js";

const doc = {
  id: "x",
  files: Array.from({ length: 1500 }, (_, i) => ({ path: `base/5/${i}`, size: i })),
};

describe("getJson on a body that breaks off", () => {
  it("goes on where it broke, and hands each element over once", async () => {
    const inner = new BreakingStore(2, 20_000);
    await putJson(inner, "m.json", doc);
    const store = addRetries(inner, fakeClockPolicy(60_000));
    const seen: unknown[] = [];
    const read = await getJson<{ id: string; files: unknown[] }>(
      store,
      "m.json",
      () => new Error("missing"),
      { each: new Map([["files", (file) => seen.push(file)]]), batchBytes: 4096, smallBytes: 0 },
    );
    expect(inner.gets).toBe(3);
    expect(read.id).toBe("x");
    expect(seen).toEqual(doc.files);
  });

  it("past the retry budget: a transient storage failure, not a damaged document", async () => {
    const inner = new BreakingStore(1000, 100);
    await putJson(inner, "m.json", doc);
    const store = addRetries(inner, fakeClockPolicy(5_000));
    const failed = await getJson(store, "m.json", () => new Error("missing")).catch((e) => e);
    expect(failed).toBeInstanceOf(StorageError);
    expect(failed).not.toBeInstanceOf(IntegrityError);
    expect((failed as StorageError).transient).toBe(true);
    expect((failed as Error).message).toMatch(/m\.json broke off 8 times in a row .*aborted/);
    expect(inner.gets).toBeGreaterThan(2);
  });

  it("an element the caller refused fails the read, also when the body breaks later", async () => {
    const inner = new BreakingStore(1, 40_000);
    await putJson(inner, "m.json", doc);
    const store = addRetries(inner, fakeClockPolicy(60_000));
    const taken: number[] = [];
    const offered: number[] = [];
    const failed = await getJson(store, "m.json", () => new Error("missing"), {
      each: new Map([
        [
          "files",
          (file) => {
            const { size } = file as { size: number };
            offered.push(size);
            if (size === 10) throw new Error("not a file entry");
            taken.push(size);
          },
        ],
      ]),
      batchBytes: 4096,
      smallBytes: 0,
    }).catch((e: unknown) => e);
    expect(inner.gets).toBe(2);
    // The read ends as a read of a document with a bad element does: nothing after it
    // is offered, and it is not passed over.
    expect(failed).toBeInstanceOf(IntegrityError);
    expect(taken).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(offered).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("a document that went meanwhile is missing; one rewritten meanwhile is read again whole", async () => {
    const gone = new BreakingStore(1, 20_000);
    await putJson(gone, "m.json", doc);
    gone.beforeGet = async (n, key) => {
      if (n === 2) await gone.delete(key);
    };
    const failed = await getJson(addRetries(gone, fakeClockPolicy(60_000)), "m.json", () =>
      Object.assign(new Error("missing"), { missing: true }),
    ).catch((e: unknown) => e);
    expect(failed).toMatchObject({ missing: true });

    const rewritten = new BreakingStore(1, 20_000);
    await putJson(rewritten, "m.json", doc);
    const newer = { ...doc, id: "y" };
    rewritten.beforeGet = async (n, key) => {
      if (n === 2) await putJson(rewritten, key, newer);
    };
    const read = await getJson<typeof doc>(
      addRetries(rewritten, fakeClockPolicy(60_000)),
      "m.json",
      () => new Error("missing"),
    );
    expect(read.id).toBe("y");
    expect(rewritten.gets).toBe(3);
  });
});
