/** pushWalFile / fetchWalFile against the memory store: the contracts, without processes. */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ClusterMismatchError,
  IntegrityError,
  NotFoundError,
  RefusedError,
  StorageError,
  WalConflictError,
} from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { identityKey } from "../../src/repository/keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { defaultRetryPolicy } from "../../src/storage/retry.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { readAll } from "../../src/storage/streams.js";
import { fetchWalFile } from "../../src/wal/fetch.js";
import { type PushDeps, pushWalFile } from "../../src/wal/push.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

let dir: string;
let store: MemoryStore;
let deps: PushDeps;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-unit-"));
  store = new MemoryStore();
  deps = {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 3 },
    log: memoryLogger(),
    now: () => new Date("2026-11-21T12:00:00Z"),
  };
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

const fetchDeps = () => ({
  store: addRetries(store, defaultRetryPolicy(1000)),
  cluster: "main",
  log: memoryLogger(),
});

describe("pushWalFile", () => {
  it("records when it pushed, on the pushing host's clock, in memory and streamed alike", async () => {
    for (const inMemoryLimit of [undefined, 1024]) {
      const name = segmentName(1, 0, inMemoryLimit === undefined ? 1 : 2);
      const segment = makeSegment(1, 0, inMemoryLimit === undefined ? 1 : 2);
      const outcome = await pushWalFile({ ...deps, inMemoryLimit }, await file(name, segment));
      const head = await store.head(outcome.key);
      expect(head?.metadata["pgha-pushed-at"]).toBe("2026-11-21T12:00:00.000Z");
    }
  });

  it("stores a compressed, checksummed segment and records the cluster identity", async () => {
    const name = segmentName(1, 0, 1);
    const outcome = await pushWalFile(deps, await file(name, makeSegment(1, 0, 1)));
    expect(outcome).toMatchObject({
      status: "stored",
      key: `v1/clusters/main/wal/0000000100000000/${name}`,
    });
    expect(outcome.storedSize).toBeLessThan(outcome.rawSize / 10);
    const head = await store.head(outcome.key);
    expect(head?.metadata).toMatchObject({
      "pgha-sha256": outcome.sha256,
      "pgha-raw-size": String(1 << 20),
      "pgha-compression": "zstd",
    });
    const identity = JSON.parse(
      (await readAll((await store.get(identityKey("main"))).body)).toString(),
    );
    expect(identity).toMatchObject({
      systemIdentifier: "7300000000000000001",
      walSegmentSize: 1 << 20,
      pgVersion: "15",
      walMagic: "0xD110",
    });
  });

  it("treats the same content as already archived and different content as a conflict", async () => {
    const name = segmentName(1, 0, 2);
    const bytes = makeSegment(1, 0, 2);
    await pushWalFile(deps, await file(name, bytes));
    expect((await pushWalFile(deps, await file(name, bytes))).status).toBe("already-archived");
    const other = Buffer.from(bytes);
    other[5000] = (other[5000] ?? 0) ^ 1;
    await expect(pushWalFile(deps, await file(name, other))).rejects.toBeInstanceOf(
      WalConflictError,
    );
    // Still the original.
    const dest = join(dir, "back");
    await fetchWalFile(fetchDeps(), name, dest);
    expect((await readFile(dest)).equals(bytes)).toBe(true);
  });

  it("refuses segments of another system or another segment size", async () => {
    await pushWalFile(deps, await file(segmentName(1, 0, 1), makeSegment(1, 0, 1)));
    const foreign = makeSegment(1, 0, 3, { systemIdentifier: 42n });
    await expect(
      pushWalFile(deps, await file(segmentName(1, 0, 3), foreign)),
    ).rejects.toBeInstanceOf(ClusterMismatchError);
    const bigger = makeSegment(1, 0, 3, { segmentSize: 1 << 21 });
    await expect(pushWalFile(deps, await file(segmentName(1, 0, 3), bigger))).rejects.toThrow(
      /2097152-byte segments but .* 1048576-byte/,
    );
    expect([...(await collectKeys(store))].filter((k) => k.includes("00000003"))).toEqual([]);
  });

  it("accepts .partial, .backup and .history files and refuses anything else", async () => {
    await pushWalFile(deps, await file(`${segmentName(1, 0, 4)}.partial`, makeSegment(1, 0, 4)));
    const backup =
      "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nSTOP WAL LOCATION: 0/4000100\n";
    await pushWalFile(
      deps,
      await file("000000010000000000000004.00000028.backup", Buffer.from(backup)),
    );
    await pushWalFile(
      deps,
      await file("00000002.history", Buffer.from("1\t0/5000000\tno recovery target specified\n")),
    );
    expect([...(await collectKeys(store))]).toEqual(
      expect.arrayContaining([
        "v1/clusters/main/wal/history/00000002.history",
        "v1/clusters/main/wal/0000000100000000/000000010000000000000004.00000028.backup",
        "v1/clusters/main/wal/0000000100000000/000000010000000000000004.partial",
      ]),
    );
    for (const [name, content] of [
      ["postgresql.conf", "x"],
      ["000000010000000000000005.gz", "x"],
      ["00000003.history", "\0binary"],
      ["000000010000000000000004.00000028.backup", "not a backup label"],
    ] as const) {
      await expect(
        pushWalFile(deps, await file(name, Buffer.from(content))),
      ).rejects.toBeInstanceOf(RefusedError);
    }
  });

  it("refuses a FIFO or a directory under a WAL name at once, without reading or storing", async () => {
    const fifo = join(dir, segmentName(1, 0, 1));
    execFileSync("mkfifo", [fifo]);
    // Before: open(2) waited for a writer that never comes; the push hung.
    const pushed = pushWalFile(deps, fifo);
    await expect(pushed).rejects.toBeInstanceOf(RefusedError);
    await expect(pushed).rejects.toThrow(/is not a regular file \(a FIFO\)/);
    const directory = join(dir, segmentName(1, 0, 2));
    await mkdir(directory);
    await expect(pushWalFile(deps, directory)).rejects.toThrow(
      /is not a regular file \(a directory\)/,
    );
    expect(await store.head(identityKey("main"))).toBeUndefined();
  }, 5000);

  it("stores uncompressed with compress none", async () => {
    const name = segmentName(1, 0, 6);
    const outcome = await pushWalFile(
      { ...deps, compression: { algorithm: "none" } },
      await file(name, makeSegment(1, 0, 6)),
    );
    expect(outcome.storedSize).toBe(outcome.rawSize);
    const dest = join(dir, "plain");
    await fetchWalFile(fetchDeps(), name, dest);
    expect((await readFile(dest)).length).toBe(1 << 20);
  });
});

describe("fetchWalFile", () => {
  it("restarts a download whose connection breaks midway instead of calling it corrupt", async () => {
    const name = segmentName(1, 0, 11);
    const bytes = makeSegment(1, 0, 11);
    await pushWalFile(deps, await file(name, bytes));
    let breaks = 2;
    const flaky = Object.create(store) as MemoryStore;
    flaky.get = async (key: string) => {
      const got = await store.get(key);
      if (breaks-- <= 0) return got;
      const full = await readAll(got.body);
      async function* broken() {
        yield full.subarray(0, 1000);
        throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
      }
      return { info: got.info, body: Readable.from(broken()) };
    };
    const dest = join(dir, "RECOVERYXLOG");
    const retry = { ...defaultRetryPolicy(5000), sleep: async () => undefined };
    await fetchWalFile(
      { store: addRetries(flaky, retry), cluster: "main", log: memoryLogger() },
      name,
      dest,
    );
    expect((await readFile(dest)).equals(bytes)).toBe(true);
    expect(breaks).toBe(-1);
  });

  it("does not answer 'not found' for a cluster that does not exist", async () => {
    const error = await fetchWalFile(
      { ...fetchDeps(), cluster: "typo" },
      segmentName(1, 0, 1),
      join(dir, "x"),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cluster 'typo' does not exist/);
  });

  it("throws NotFoundError for a missing name and writes nothing", async () => {
    await pushWalFile(deps, await file(segmentName(1, 0, 1), makeSegment(1, 0, 1)));
    await rm(join(dir, segmentName(1, 0, 1)));
    await expect(
      fetchWalFile(fetchDeps(), segmentName(1, 0, 9), join(dir, "x")),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses names with paths", async () => {
    await expect(
      fetchWalFile(fetchDeps(), "../000000010000000000000001", join(dir, "x")),
    ).rejects.toBeInstanceOf(RefusedError);
  });

  it("never delivers corrupt content and leaves no temporary file", async () => {
    const name = segmentName(1, 0, 7);
    const outcome = await pushWalFile(
      { ...deps, compression: { algorithm: "none" } },
      await file(name, makeSegment(1, 0, 7)),
    );
    const stored = await readAll((await store.get(outcome.key)).body);
    stored[777] = (stored[777] ?? 0) ^ 0xff;
    store.corrupt(outcome.key, stored);
    const out = await mkdtemp(join(tmpdir(), "pgha-out-"));
    try {
      await expect(
        fetchWalFile(fetchDeps(), name, join(out, "RECOVERYXLOG")),
      ).rejects.toBeInstanceOf(IntegrityError);
      expect(await readdir(out)).toEqual([]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("refuses a segment moved whole (object and metadata) under another segment's name, in memory and streamed", async () => {
    // Two objects exchanged in the repository: each checks against its own metadata (and,
    // encrypted, authenticates: age binds no key), but holds the other segment's WAL.
    const a = segmentName(1, 0, 8);
    const b = segmentName(1, 0, 9);
    const pushedA = await pushWalFile(deps, await file(a, makeSegment(1, 0, 8)));
    const pushedB = await pushWalFile(deps, await file(b, makeSegment(1, 0, 9)));
    const objectA = await store.get(pushedA.key);
    const bodyA = await readAll(objectA.body);
    const objectB = await store.get(pushedB.key);
    const bodyB = await readAll(objectB.body);
    await store.delete(pushedA.key);
    await store.delete(pushedB.key);
    await store.put(pushedA.key, bodyB, { metadata: objectB.info.metadata });
    await store.put(pushedB.key, bodyA, { metadata: objectA.info.metadata });
    const out = await mkdtemp(join(tmpdir(), "pgha-out-"));
    try {
      for (const inMemoryLimit of [undefined, 1024]) {
        const fetched = fetchWalFile(
          { ...fetchDeps(), inMemoryLimit },
          a,
          join(out, "RECOVERYXLOG"),
        );
        await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
        await expect(fetched).rejects.toThrow(/holds another WAL file than its name says/);
        expect(await readdir(out)).toEqual([]);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("reports undecodable zstd data as corruption", async () => {
    const name = segmentName(1, 0, 8);
    const outcome = await pushWalFile(deps, await file(name, makeSegment(1, 0, 8)));
    store.corrupt(outcome.key, Buffer.from("definitely not zstd"));
    await expect(fetchWalFile(fetchDeps(), name, join(dir, "y"))).rejects.toBeInstanceOf(
      IntegrityError,
    );
  });

  it.each([
    ["in memory", 1 << 20, undefined],
    // Above the in-memory limit (64 MiB by default, lowered here) both ends stream.
    ["streamed", 1 << 21, 1 << 20],
  ])("delivers a segment %s only when it decodes to its recorded size", async (_, size, limit) => {
    const name = segmentName(1, 0, 1);
    const bytes = makeSegment(1, 0, 1, { segmentSize: size });
    const outcome = await pushWalFile({ ...deps, inMemoryLimit: limit }, await file(name, bytes));
    expect(outcome.storedSize).toBeGreaterThan(0);
    const dest = join(dir, "BIG");
    const fetching = () => ({ ...fetchDeps(), inMemoryLimit: limit });
    await fetchWalFile(fetching(), name, dest);
    expect((await readFile(dest)).equals(bytes)).toBe(true);
    // The same stored bytes under metadata that promise less: refused, nothing delivered.
    const stored = await store.head(outcome.key);
    const body = await readAll((await store.get(outcome.key)).body);
    await store.put(outcome.key, body, {
      metadata: { ...stored?.metadata, "pgha-raw-size": String(size - 1) },
    });
    await rm(dest);
    await expect(fetchWalFile(fetching(), name, dest)).rejects.toBeInstanceOf(IntegrityError);
    expect(await readdir(dir)).toEqual([name]);
  });

  it("replaces an existing destination file atomically", async () => {
    const name = segmentName(1, 0, 10);
    const bytes = makeSegment(1, 0, 10);
    await pushWalFile(deps, await file(name, bytes));
    const dest = join(dir, "RECOVERYXLOG");
    await writeFile(dest, "stale");
    await fetchWalFile(fetchDeps(), name, dest);
    expect((await readFile(dest)).equals(bytes)).toBe(true);
  });
});

async function collectKeys(s: MemoryStore): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const entry of s.list("")) keys.add(entry.key);
  return keys;
}
