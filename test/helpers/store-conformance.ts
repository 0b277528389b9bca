/**
 * The ObjectStore conformance suite: every implementation runs these same tests
 * (memory.test.ts, fs.test.ts, s3.test.ts against a real S3 server).
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlreadyExistsError, NotFoundError, StorageError } from "../../src/errors.js";
import type { ObjectStore, StoreCapabilities } from "../../src/storage/object-store.js";
import { readAll } from "../../src/storage/streams.js";

export interface StoreFixture {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

export interface ConformanceOptions {
  /** What the store must declare. */
  capabilities: StoreCapabilities;
  /**
   * Whether concurrent ifAbsent puts are atomic here: what the test knows of the server
   * behind the store (If-None-Match honoured), where the store itself cannot know.
   */
  atomicIfAbsent: boolean;
  /** A body larger than this goes through multipart on S3. */
  largeBody: number;
}

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

async function collect(store: ObjectStore, prefix: string) {
  const out: { key: string; size: number }[] = [];
  for await (const entry of store.list(prefix)) out.push({ key: entry.key, size: entry.size });
  return out;
}

export function describeConformance(
  name: string,
  make: () => Promise<StoreFixture>,
  options: ConformanceOptions,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: ObjectStore;
    beforeAll(async () => {
      fixture = await make();
      store = fixture.store;
    });
    afterAll(async () => fixture?.cleanup());

    it("declares its capabilities, and no guarantee the server is known to lack", () => {
      expect(store.capabilities).toEqual(options.capabilities);
      if (store.capabilities.atomicIfAbsent === true) expect(options.atomicIfAbsent).toBe(true);
    });

    it("reports a missing key: head gives undefined, get throws NotFoundError", async () => {
      expect(await store.head("missing/key")).toBeUndefined();
      await expect(store.get("missing/key")).rejects.toBeInstanceOf(NotFoundError);
    });

    it("round-trips bytes and metadata", async () => {
      const data = randomBytes(1000);
      const put = await store.put("rt/bytes", data, {
        metadata: { "pgha-a": "1", "pgha-b": "x y" },
      });
      expect(put.size).toBe(1000);
      const head = await store.head("rt/bytes");
      expect(head?.size).toBe(1000);
      expect(head?.metadata).toMatchObject({ "pgha-a": "1", "pgha-b": "x y" });
      const got = await store.get("rt/bytes");
      expect(got.info.metadata).toMatchObject({ "pgha-a": "1" });
      expect(sha(await readAll(got.body))).toBe(sha(data));
    });

    it("gives an object's bytes from a byte on (getFrom, where it has it), with its whole size", async () => {
      if (!store.getFrom) return; // memory: resumingGet reads such a store from the start
      const data = randomBytes(300_000);
      await store.put("rt/ranged", data, { metadata: { "pgha-a": "1" } });
      for (const from of [1, 123_457, 299_999]) {
        const got = await store.getFrom("rt/ranged", from);
        expect(got.info.size).toBe(300_000);
        expect(got.info.metadata).toMatchObject({ "pgha-a": "1" });
        expect(got.start).toBe(from);
        expect((await readAll(got.body)).equals(data.subarray(from))).toBe(true);
      }
      await expect(store.getFrom("missing/key", 5)).rejects.toBeInstanceOf(NotFoundError);
    });

    it("round-trips an empty body", async () => {
      await store.put("rt/empty", new Uint8Array(0));
      expect((await store.head("rt/empty"))?.size).toBe(0);
      expect((await readAll((await store.get("rt/empty")).body)).length).toBe(0);
    });

    it("streams a large body in (multipart on S3) and out byte-identical", async () => {
      const data = randomBytes(options.largeBody);
      // Deliver in odd-sized chunks to exercise part boundaries.
      const chunks: Buffer[] = [];
      for (let at = 0; at < data.length; at += 777_777)
        chunks.push(data.subarray(at, at + 777_777));
      const put = await store.put("rt/large", Readable.from(chunks), {
        metadata: { "pgha-n": "2" },
      });
      expect(put.size).toBe(data.length);
      const got = await store.get("rt/large");
      expect(got.info.size).toBe(data.length);
      expect(got.info.metadata["pgha-n"]).toBe("2");
      expect(sha(await readAll(got.body))).toBe(sha(data));
    });

    it("replaces an object when ifAbsent is not set", async () => {
      await store.put("rt/replace", Buffer.from("one"));
      await store.put("rt/replace", Buffer.from("two!"));
      const got = await store.get("rt/replace");
      expect((await readAll(got.body)).toString()).toBe("two!");
    });

    it("refuses ifAbsent on an existing key and keeps the original", async () => {
      await store.put("rt/once", Buffer.from("original"), { metadata: { "pgha-v": "1" } });
      await expect(
        store.put("rt/once", Buffer.from("other"), { ifAbsent: true, metadata: { "pgha-v": "2" } }),
      ).rejects.toBeInstanceOf(AlreadyExistsError);
      const got = await store.get("rt/once");
      expect((await readAll(got.body)).toString()).toBe("original");
      expect(got.info.metadata["pgha-v"]).toBe("1");
    });

    const atomicIfAbsent = options.capabilities.atomicIfAbsent === true || options.atomicIfAbsent;
    it(`concurrent ifAbsent puts: ${atomicIfAbsent ? "exactly one wins" : "one intact body wins (no atomic If-None-Match)"}`, async () => {
      const bodies = ["a", "b", "c", "d", "e"].map((s) => Buffer.from(s.repeat(100)));
      const results = await Promise.allSettled(
        bodies.map((body) => store.put("rt/race", body, { ifAbsent: true })),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      for (const r of results) {
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(AlreadyExistsError);
      }
      if (atomicIfAbsent) expect(won).toHaveLength(1);
      else expect(won.length).toBeGreaterThanOrEqual(1);
      const stored = (await readAll((await store.get("rt/race")).body)).toString();
      expect(bodies.map(String)).toContain(stored);
    });

    it.skipIf(options.capabilities.atomicReplace !== true)(
      "replaces atomically when it says so: readers see a whole old or new body",
      async () => {
        const bodies = ["a", "b"].map((c) => Buffer.alloc(256 * 1024, c));
        await store.put("rt/swap", bodies[0] ?? Buffer.alloc(0));
        const reads: Promise<string>[] = [];
        const writes: Promise<unknown>[] = [];
        for (let i = 0; i < 20; i++) {
          writes.push(store.put("rt/swap", bodies[i % 2] ?? Buffer.alloc(0)));
          reads.push(
            store.get("rt/swap").then(async ({ info, body }) => {
              const data = await readAll(body);
              expect(data.length).toBe(info.size);
              return data.toString();
            }),
          );
        }
        await Promise.all(writes);
        const wholes = bodies.map(String);
        for (const read of await Promise.all(reads)) expect(wholes).toContain(read);
      },
    );

    it("makes an existing object durable on request", async () => {
      await store.put("rt/durable", Buffer.from("d"));
      await store.durable("rt/durable");
      expect((await store.head("rt/durable"))?.size).toBe(1);
    });

    it("lists by plain string prefix in ascending key order with sizes", async () => {
      for (const key of ["ls/b2", "ls/a/x", "ls/b1", "ls/b/y", "lsx/z", "ls/c"]) {
        await store.put(key, Buffer.alloc(key.length));
      }
      expect(await collect(store, "ls/b")).toEqual([
        { key: "ls/b/y", size: 6 },
        { key: "ls/b1", size: 5 },
        { key: "ls/b2", size: 5 },
      ]);
      expect((await collect(store, "ls")).map((e) => e.key)).toEqual([
        "ls/a/x",
        "ls/b/y",
        "ls/b1",
        "ls/b2",
        "ls/c",
        "lsx/z",
      ]);
      expect(await collect(store, "nothing/")).toEqual([]);
    });

    it("lists only keys after a given one, to resume a listing", async () => {
      for (const key of ["la/b2", "la/a/x", "la/b1", "la/b/y", "lax/z", "la/c"]) {
        await store.put(key, Buffer.alloc(key.length));
      }
      const listAfter = async (prefix: string, from: string) => {
        const out: string[] = [];
        for await (const entry of store.list(prefix, { after: from })) out.push(entry.key);
        return out;
      };
      expect(await listAfter("la", "la/b1")).toEqual(["la/b2", "la/c", "lax/z"]);
      expect(await listAfter("la/", "la/b")).toEqual(["la/b/y", "la/b1", "la/b2", "la/c"]);
      expect(await listAfter("la/", "la/c")).toEqual([]);
    });

    it("lists more than one page (over 1000 keys)", async () => {
      const keys = Array.from({ length: 1010 }, (_, i) => `page/${String(i).padStart(5, "0")}`);
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, Buffer.from("p"))));
      }
      const listed = await collect(store, "page/");
      expect(listed.map((e) => e.key)).toEqual(keys);
    });

    it("deletes, and deleting a missing key is not an error", async () => {
      await store.put("rt/delete", Buffer.from("x"));
      await store.delete("rt/delete");
      expect(await store.head("rt/delete")).toBeUndefined();
      await store.delete("rt/delete");
    });

    it("leaves nothing under the key when the body stream fails", async () => {
      async function* failing() {
        yield randomBytes(1024);
        throw new Error("source broke");
      }
      await expect(store.put("rt/broken", Readable.from(failing()))).rejects.toThrow();
      expect(await store.head("rt/broken")).toBeUndefined();
      expect(await collect(store, "rt/broken")).toEqual([]);
    });

    it("rejects keys that could escape the repository", async () => {
      for (const key of ["../x", "/abs", "a//b", "a/./b", "a/.tmp-x", "a b", ""]) {
        await expect(store.put(key, Buffer.from("x")), key).rejects.toBeInstanceOf(StorageError);
      }
    });

    it("rejects keys in the reserved .tmp- and .pgha namespaces", async () => {
      for (const key of [".pgha-store", "a/.pgha", "a/.pghax/b", ".tmp-1"]) {
        await expect(store.put(key, Buffer.from("x")), key).rejects.toBeInstanceOf(StorageError);
        await expect(store.head(key), key).rejects.toBeInstanceOf(StorageError);
      }
    });

    it("rejects metadata S3 could not carry", async () => {
      await expect(
        store.put("rt/meta", Buffer.from("x"), { metadata: { "Bad Name": "v" } }),
      ).rejects.toBeInstanceOf(StorageError);
      await expect(
        store.put("rt/meta", Buffer.from("x"), { metadata: { big: "v".repeat(3000) } }),
      ).rejects.toBeInstanceOf(StorageError);
    });
  });
}
