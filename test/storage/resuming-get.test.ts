/**
 * resumingGet (retrying-store.ts): the body of a big immutable object (a backup's bundle,
 * a dump) goes on across reads that break off, every byte handed on once and in order;
 * the budget counts from the last byte handed on; what is not the store's failure, and
 * what outlasts the budget, fails as before.
 */
import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { generateX25519Identity } from "../../src/crypto/age.js";
import { NotFoundError, StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type * as Store from "../../src/storage/object-store.js";
import {
  addRetries,
  ChangedWhileReadError,
  resumingGet,
} from "../../src/storage/retrying-store.js";
import { readAll } from "../../src/storage/streams.js";
import { BreakingStore, fakeClockPolicy } from "../helpers/breaking-store.js";
import { encryptionSettings } from "../helpers/builders.js";
import { fileTempDirs } from "../helpers/temp-dir.js";

const KEY = "v1/clusters/main/backups/20261201T000000Z/base-0.tar.zst";

/** Bytes that differ at every offset (a misplaced join shows). */
function pattern(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 32) {
    createHash("sha256").update(String(i)).digest().copy(out, i);
  }
  return out;
}

const reset = () => Object.assign(new Error("aborted"), { code: "ECONNRESET" });

/**
 * GET number n (from 1) breaks off after `cuts[n - 1]` bytes of its body, handed on in
 * chunks of `chunk` bytes; GETs past the list are whole.
 */
class ResettingStore extends MemoryStore {
  gets = 0;
  readonly bodies: Readable[] = [];
  constructor(
    private readonly cuts: readonly number[],
    private readonly chunk = 10_000,
  ) {
    super();
  }

  override async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    const cut = this.cuts[this.gets++];
    const got = await super.get(key);
    const parts: Buffer[] = [];
    for await (const part of got.body) parts.push(part as Buffer);
    const all = Buffer.concat(parts);
    const size = this.chunk;
    async function* body() {
      const end = cut ?? all.length;
      for (let at = 0; at < end; at += size) yield all.subarray(at, Math.min(at + size, end));
      if (cut !== undefined) throw reset();
    }
    const out = Readable.from(body());
    this.bodies.push(out);
    return { info: got.info, body: out };
  }
}

/** A ResettingStore with ranged GETs, counting the bytes its bodies carry. */
class RangedResettingStore extends ResettingStore {
  carried = 0;
  async getFrom(key: string, from: number) {
    const got = await this.get(key);
    const all: Buffer[] = [];
    for await (const part of got.body) all.push(part as Buffer);
    const whole = Buffer.concat(all);
    this.carried += whole.length;
    return { info: got.info, body: Readable.from([whole.subarray(from)]), start: from };
  }
}

const madeDirs = fileTempDirs();

/** An encrypting store over `raw`, with a new X25519 identity in a file of its own. */
async function encryptingOver(raw: MemoryStore): Promise<EncryptingStore> {
  const identity = generateX25519Identity();
  const dir = madeDirs(await mkdtemp(join(tmpdir(), "pgha-resume-")));
  const identityFile = join(dir, "key.txt");
  await writeFile(identityFile, `${identity.secretKey}\n`, { mode: 0o600 });
  return new EncryptingStore(
    raw,
    raw,
    new EncryptionKeys(
      "keys",
      encryptionSettings({ recipients: [identity.publicKey], identityFile }),
    ),
    memoryLogger(),
  );
}

/** A MemoryStore object's bytes, not through any GET that breaks. */
async function* chunksOfMemory(store: MemoryStore, key: string): AsyncGenerator<Buffer> {
  const got = await MemoryStore.prototype.get.call(store, key);
  for await (const part of got.body) yield part as Buffer;
}

async function readBody(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of chunks) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

describe("resumingGet", () => {
  const data = pattern(1_000_000);

  it("goes on where the body broke off, each byte once, through several resets", async () => {
    // Cuts inside a chunk and on a chunk's end, and one before the last handed on byte
    // (a GET that breaks while the bytes already had are passed over).
    const raw = new ResettingStore([123_457, 400_000, 50_000, 999_999]);
    await raw.put(KEY, data);
    const got = await resumingGet(addRetries(raw, fakeClockPolicy(5_000)), KEY);
    expect(got.info.size).toBe(data.length);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(raw.gets).toBe(5);
  });

  it("counts the budget from the last byte received, and gives up on a body that keeps breaking short", async () => {
    // Eight resets with progress between them outlast a budget of one second, as a
    // listing's pages do.
    const progressing = new ResettingStore([1, 2, 3, 4, 5, 6, 7, 8].map((n) => n * 100_000));
    await progressing.put(KEY, data);
    const whole = await resumingGet(addRetries(progressing, fakeClockPolicy(1_000)), KEY);
    expect((await readBody(whole.chunks)).equals(data)).toBe(true);
    // Resets at the same byte make no progress: the budget runs out.
    const stuck = new ResettingStore(Array(1000).fill(300_000));
    await stuck.put(KEY, data);
    const got = await resumingGet(addRetries(stuck, fakeClockPolicy(3_000)), KEY);
    const failed = await readBody(got.chunks).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StorageError);
    expect((failed as StorageError).transient).toBe(true);
    expect((failed as StorageError).message).toMatch(
      /broke off 8 times in a row without a new byte \(at byte 300000\)/,
    );
    expect((failed as StorageError).hint).toMatch(/network/);
    expect(stuck.gets).toBe(9);
  });

  it("does not ask again for an object that vanished, nor without a retry wrapper", async () => {
    const raw = new ResettingStore([200_000]);
    await raw.put(KEY, data);
    const got = await resumingGet(addRetries(raw, fakeClockPolicy(5_000)), KEY);
    const parts: Buffer[] = [];
    const failed = await (async () => {
      for await (const part of got.chunks) {
        parts.push(part as Buffer);
        // Deleted while the first body is read: the next GET is "not found".
        if (parts.length === 1) await raw.delete(KEY);
      }
    })().catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(NotFoundError);
    expect(raw.gets).toBe(2);

    const bare = new ResettingStore([200_000]);
    await bare.put(KEY, data);
    const once = await resumingGet(bare, KEY);
    expect((await readBody(once.chunks).catch((e: unknown) => e)) as Error).toMatchObject({
      code: "ECONNRESET",
    });
    expect(bare.gets).toBe(1);
  });

  it("a body that breaks before anyone reads it neither ends the process nor is lost", async () => {
    for (const breaks of [1, 1000]) {
      const raw = new BreakingStore(breaks, 100, "at-once");
      await raw.put(KEY, data);
      const got = await resumingGet(addRetries(raw, fakeClockPolicy(3_000)), KEY);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the reset comes meanwhile
      const read = await readBody(got.chunks).catch((error: unknown) => error);
      if (breaks === 1) expect((read as Buffer).equals(data)).toBe(true);
      else expect(read).toBeInstanceOf(StorageError);
    }
  });

  it("reads again over a slow link for longer than the budget, while bytes come", async () => {
    // Each body breaks further on, but reading again what was had takes 2 s a body (a
    // budget of 1 s): the store is answering, so this is not a store that is gone.
    const raw = new ResettingStore([300_000, 250_000, 500_000, 400_000, 900_000]);
    await raw.put(KEY, data);
    const policy = fakeClockPolicy(1_000);
    const slow = Object.assign(Object.create(raw) as ResettingStore, {
      get: async (key: string) => {
        const got = await raw.get(key);
        async function* crawl() {
          for await (const chunk of got.body) {
            await policy.sleep(70); // about 2 s for 300,000 bytes
            yield chunk as Buffer;
          }
        }
        return { info: got.info, body: Readable.from(crawl()) };
      },
    });
    const got = await resumingGet(addRetries(slow, policy), KEY);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(raw.gets).toBe(6);
  });

  it("waits out a store that does not answer for a while, within the time budget", async () => {
    // After the first body breaks: a ranged body that breaks before its first byte, then
    // 14 GETs that fail at once (a network down for a while): only bodies count toward
    // the 8 in a row, the failed GETs are the time budget's.
    const raw = new ResettingStore([300_000]);
    await raw.put(KEY, data);
    let ranged = 0;
    const down = Object.assign(Object.create(raw) as ResettingStore, {
      getFrom: async (key: string, from: number) => {
        ranged++;
        const info = (await raw.head(key)) as Store.ObjectInfo;
        if (ranged === 1) {
          async function* none() {
            yield* [];
            throw reset();
          }
          return { info, body: Readable.from(none()), start: from };
        }
        if (ranged <= 15) throw new StorageError("connect ECONNREFUSED", { transient: true });
        const whole = await readBody(chunksOfMemory(raw, key));
        return { info, body: Readable.from([whole.subarray(from)]), start: from };
      },
    });
    const got = await resumingGet(addRetries(down, fakeClockPolicy(60_000)), KEY);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(ranged).toBe(16);
  });

  it("takes a range that ends before the object for one more break, not for its end", async () => {
    // A server that sends less than asked for (Content-Range: bytes N-M/size, M short).
    const raw = new ResettingStore([200_000]);
    await raw.put(KEY, data);
    let ranges = 0;
    const short = Object.assign(Object.create(raw) as ResettingStore, {
      getFrom: async (key: string, from: number) => {
        ranges++;
        const info = (await raw.head(key)) as Store.ObjectInfo;
        const whole = await readBody(chunksOfMemory(raw, key));
        return { info, body: Readable.from([whole.subarray(from, from + 100_000)]), start: from };
      },
    });
    const got = await resumingGet(addRetries(short, fakeClockPolicy(60_000)), KEY);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(ranges).toBe(8);
  });

  it("asks a store with ranges for the rest only", async () => {
    const raw = new RangedResettingStore([123_457, 400_000]);
    await raw.put(KEY, data);
    const store = addRetries(raw, fakeClockPolicy(5_000));
    expect(store.getFrom).toBeDefined();
    const got = await resumingGet(store, KEY);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(raw.gets).toBe(3);
  });

  it("does not count the time the reader took against the budget", async () => {
    const raw = new ResettingStore([300_000]);
    await raw.put(KEY, data);
    const policy = fakeClockPolicy(60_000);
    const got = await resumingGet(addRetries(raw, policy), KEY);
    const parts: Buffer[] = [];
    for await (const part of got.chunks) {
      // A reader busy for longer than the whole budget (a slow disk, a busy pg_restore).
      if (parts.length === 0) await policy.sleep(61_000);
      parts.push(Buffer.from(part));
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(raw.gets).toBe(2);
  });

  it("does not retry an error the reader throws in, nor after an abort", async () => {
    const raw = new ResettingStore([]);
    await raw.put(KEY, data);
    const got = await resumingGet(addRetries(raw, fakeClockPolicy(60_000)), KEY);
    await got.chunks.next();
    await expect(got.chunks.throw(new Error("EPIPE"))).rejects.toThrow("EPIPE");
    expect(raw.gets).toBe(1);
    expect(raw.bodies[0]?.destroyed).toBe(true);

    // Aborted while a body is read: no new GET, and never the end of a whole body.
    const cut = new ResettingStore([200_000, 200_000, 200_000]);
    await cut.put(KEY, data);
    const stop = new AbortController();
    const read = await resumingGet(addRetries(cut, fakeClockPolicy(60_000)), KEY, stop.signal);
    const failed = await (async () => {
      for await (const _ of read.chunks) stop.abort();
    })().catch((error: unknown) => error);
    expect((failed as Error).name).toBe("AbortError");
    expect(cut.gets).toBe(1);
  });

  it("refuses to join bytes of an object rewritten between its GETs", async () => {
    const raw = new ResettingStore([200_000]);
    await raw.put(KEY, data);
    const got = await resumingGet(addRetries(raw, fakeClockPolicy(60_000)), KEY);
    const failed = await (async () => {
      let first = true;
      for await (const _ of got.chunks) {
        if (first) await raw.put(KEY, pattern(999_000));
        first = false;
      }
    })().catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(ChangedWhileReadError);
    expect((failed as StorageError).transient).toBe(true);
  });

  it("closes the first body when the reader gives up before it read anything", async () => {
    for (const retried of [true, false]) {
      const raw = new ResettingStore([]);
      await raw.put(KEY, data);
      const store = retried ? addRetries(raw, fakeClockPolicy(60_000)) : raw;
      const got = await resumingGet(store, KEY);
      await got.chunks.return(undefined);
      expect(raw.bodies[0]?.destroyed).toBe(true);
    }
  });

  it("stops asking once the reader stops", async () => {
    const raw = new ResettingStore([]);
    await raw.put(KEY, data);
    const got = await resumingGet(addRetries(raw, fakeClockPolicy(5_000)), KEY);
    for await (const _ of got.chunks) break;
    expect(await got.chunks.next()).toEqual({ done: true, value: undefined });
    expect(raw.bodies.map((b) => b.destroyed)).toEqual([true]);
    expect(raw.gets).toBe(1);
  });

  it("resumes an encrypted object's body, decrypted again from its start", async () => {
    // Cuts in the ciphertext: inside the header's first bytes, and inside a later chunk.
    const raw = new ResettingStore([40, 300_007, 700_003]);
    const encrypting = await encryptingOver(raw);
    await encrypting.put(KEY, data);
    raw.gets = 0;
    const got = await resumingGet(addRetries(encrypting, fakeClockPolicy(5_000)), KEY);
    expect((await readBody(got.chunks)).equals(data)).toBe(true);
    expect(raw.gets).toBe(4);
  });
});

describe("an encrypted object whose body breaks while the identity is read", () => {
  it("is the store's transient failure, retried (it was an internal error: exit 70, wal-fetch 126)", async () => {
    const raw = new BreakingStore(1, 10, "at-once");
    const encrypting = await encryptingOver(raw);
    const data = pattern(100_000);
    await encrypting.put(KEY, data);
    raw.gets = 0;
    // A plain GET through the retry wrapper (wal-fetch's, a manifest's first GET).
    const got = await addRetries(encrypting, fakeClockPolicy(5_000)).get(KEY);
    expect((await readAll(got.body)).equals(data)).toBe(true);
    expect(raw.gets).toBe(2);
  });
});
