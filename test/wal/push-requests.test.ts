/**
 * Which storage requests a wal-push makes, and what pg_wal/.pgha/ remembers between pushes
 * (src/wal/repo-facts.ts): against a store that behaves like the S3 stores (a HEAD before
 * a conditional PUT while it does not know that the server honours If-None-Match; a probe
 * of two conditional PUTs to find out), recording every request.
 */
import { chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AlreadyExistsError, ClusterMismatchError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { identityKey } from "../../src/repository/keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type * as Store from "../../src/storage/object-store.js";
import { PROBE_BODY, probeAtomicIfAbsent } from "../../src/storage/object-store.js";
import { readAll } from "../../src/storage/streams.js";
import { type PushDeps, pushWalFile } from "../../src/wal/push.js";
import { FRESH_MS, repoFactsCache } from "../../src/wal/repo-facts.js";
import { serverUser } from "../helpers/pg-cluster.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

/** A store like S3Store over a server that honours If-None-Match (or not), recording requests. */
class S3LikeStore implements Store.ObjectStore {
  readonly url = "s3://bucket/prefix";
  capabilities: Store.StoreCapabilities = {
    atomicIfAbsent: "unknown",
    atomicReplace: "unknown",
    durableWhenVisible: true,
  };
  readonly requests: string[] = [];
  /** Whether a PUT's response proves the bytes (S3: an ETag equal to their MD5). */
  etagProves = true;

  constructor(
    readonly inner: MemoryStore,
    private readonly honoursIfNoneMatch: boolean,
  ) {}

  private log(method: string, key: string) {
    this.requests.push(`${method} ${key.replace(/^v1\/clusters\/main\//, "")}`);
  }
  async head(key: string): Promise<Store.ObjectInfo | undefined> {
    this.log("HEAD", key);
    return this.inner.head(key);
  }
  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    this.log("GET", key);
    return this.inner.get(key);
  }
  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    if (options.ifAbsent && this.capabilities.atomicIfAbsent !== true && (await this.head(key)))
      throw new AlreadyExistsError(key);
    const stored = await this.rawPut(key, body, options);
    return { ...stored, verified: this.etagProves };
  }
  private rawPut(key: string, body: Store.PutBody, options: Store.PutOptions) {
    this.log("PUT", key);
    return this.inner.put(key, body, {
      ...options,
      ifAbsent: options.ifAbsent === true && this.honoursIfNoneMatch,
    });
  }
  list(prefix: string): AsyncIterable<Store.ListEntry> {
    this.log("LIST", prefix);
    return this.inner.list(prefix);
  }
  async durable(): Promise<void> {}
  async delete(key: string): Promise<void> {
    await this.inner.delete(key);
  }
  async learnCapabilities(
    probeKey: string,
    known?: Partial<Store.StoreCapabilities>,
  ): Promise<Partial<Store.StoreCapabilities>> {
    const atomicIfAbsent =
      known?.atomicIfAbsent ??
      (await probeAtomicIfAbsent(() => this.rawPut(probeKey, PROBE_BODY, { ifAbsent: true })));
    this.capabilities = { ...this.capabilities, atomicIfAbsent };
    return { atomicIfAbsent };
  }
}

let dir: string;
let walDir: string;
let clock: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-push-requests-"));
  walDir = join(dir, "pg_wal");
  await mkdir(walDir);
  clock = Date.parse("2026-11-21T12:00:00Z");
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function segment(n: number, spec: Parameters<typeof makeSegment>[3] = {}) {
  const path = join(walDir, segmentName(1, 0, n));
  await writeFile(path, makeSegment(1, 0, n, spec));
  return path;
}

/** One process per push, as PostgreSQL runs them: a fresh store object each time. */
async function push(inner: MemoryStore, honours: boolean, path: string, etagProves = true) {
  const store = new S3LikeStore(inner, honours);
  store.etagProves = etagProves;
  const log = memoryLogger();
  const deps: PushDeps = {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 1 },
    log,
    now: () => new Date(clock),
    facts: repoFactsCache(path, store.url, "main", log),
  };
  const outcome = await pushWalFile(deps, path);
  return { outcome, requests: store.requests };
}

describe("wal-push requests", () => {
  it("learns once, then makes the PUT alone where the server honours If-None-Match", async () => {
    const inner = new MemoryStore();
    const first = await push(inner, true, await segment(1));
    expect(first.requests).toEqual([
      "GET identity.json",
      "HEAD identity.json", // recording the identity: a HEAD first while nothing is known
      "PUT identity.json",
      "GET identity.json", // read back: a racing first push of another server may have won
      "PUT probes/if-none-match",
      "PUT probes/if-none-match",
      "PUT wal/0000000100000000/000000010000000000000001",
      "HEAD wal/0000000100000000/000000010000000000000001",
    ]);
    const second = await push(inner, true, await segment(2));
    expect(second.outcome.status).toBe("stored");
    expect(second.requests).toEqual(["PUT wal/0000000100000000/000000010000000000000002"]);
  });

  it("lists the name before and after a PUT to its content-addressed key where the server ignores If-None-Match", async () => {
    // A HEAD before the PUT cannot stop a concurrent pusher there (issue 12, point 4).
    const inner = new MemoryStore();
    await push(inner, false, await segment(1));
    const second = await push(inner, false, await segment(2));
    const name = "wal/0000000100000000/000000010000000000000002";
    expect(second.requests).toEqual([
      `LIST ${name}`,
      `PUT ${name}.${second.outcome.sha256}`,
      `LIST ${name}`,
    ]);
    expect(second.outcome.key).toBe(`v1/clusters/main/${name}.${second.outcome.sha256}`);
  });

  it("reads the object back when the PUT's ETag proves nothing (multipart, SSE-KMS)", async () => {
    const inner = new MemoryStore();
    await push(inner, true, await segment(1));
    const second = await push(inner, true, await segment(2), false);
    expect(second.requests).toEqual([
      "PUT wal/0000000100000000/000000010000000000000002",
      "HEAD wal/0000000100000000/000000010000000000000002",
    ]);
  });

  it("answers an archived name with a HEAD after the refused PUT", async () => {
    const inner = new MemoryStore();
    const path = await segment(1);
    await push(inner, true, path);
    const again = await push(inner, true, path);
    expect(again.outcome.status).toBe("already-archived");
    expect(again.requests).toEqual([
      "PUT wal/0000000100000000/000000010000000000000001",
      "HEAD wal/0000000100000000/000000010000000000000001",
    ]);
  });

  it("checks everything again once the cache is older than FRESH_MS", async () => {
    const inner = new MemoryStore();
    await push(inner, true, await segment(1));
    clock += FRESH_MS + 1;
    const later = await push(inner, true, await segment(2));
    expect(later.requests[0]).toBe("GET identity.json");
    expect(later.requests).toContain("PUT probes/if-none-match");
    // An identity.json deleted meanwhile is written again by that push.
    await inner.delete(identityKey("main"));
    clock += FRESH_MS + 1;
    await push(inner, true, await segment(3));
    expect(await inner.head(identityKey("main"))).toBeDefined();
  });

  it("refuses a segment of another cluster also when the cache is fresh", async () => {
    const inner = new MemoryStore();
    await push(inner, true, await segment(1));
    const foreign = await segment(2, { systemIdentifier: 42n });
    await expect(push(inner, true, foreign)).rejects.toBeInstanceOf(ClusterMismatchError);
    expect(
      await inner.head("v1/clusters/main/wal/0000000100000000/000000010000000000000002"),
    ).toBeUndefined();
  });

  it("does not trust a cached identity that a segment contradicts: the repository decides", async () => {
    const inner = new MemoryStore();
    await push(inner, true, await segment(1));
    // identity.json replaced behind the cache's back by another system's.
    const recorded = JSON.parse(
      (await readAll((await inner.get(identityKey("main"))).body)).toString(),
    );
    await inner.put(
      identityKey("main"),
      Buffer.from(JSON.stringify({ ...recorded, systemIdentifier: "42" })),
    );

    const path = await segment(2, { systemIdentifier: 42n });
    const asked = await push(inner, true, path);
    expect(asked.outcome.status).toBe("stored");
    expect(asked.requests[0]).toBe("GET identity.json");
    // The cache now holds what the repository said.
    const next = await push(inner, true, await segment(3, { systemIdentifier: 42n }));
    expect(next.requests).toEqual(["PUT wal/0000000100000000/000000010000000000000003"]);
  });

  it("has no cache for a file outside pg_wal: every push asks", async () => {
    const inner = new MemoryStore();
    const elsewhere = join(dir, segmentName(1, 0, 1));
    await writeFile(elsewhere, makeSegment(1, 0, 1));
    await push(inner, true, elsewhere);
    const path = join(dir, segmentName(1, 0, 2));
    await writeFile(path, makeSegment(1, 0, 2));
    const second = await push(inner, true, path);
    // The probe decides the layout, so it is made also where no cache keeps its answer;
    // the probe object exists already, so the first conditional PUT is refused.
    expect(second.requests).toEqual([
      "GET identity.json",
      "PUT probes/if-none-match",
      "PUT wal/0000000100000000/000000010000000000000002",
      "HEAD wal/0000000100000000/000000010000000000000002",
    ]);
    expect(await readdir(dir)).not.toContain(".pgha");
  });
});

describe("the cache in pg_wal/.pgha", () => {
  const facts = {
    identity: {
      format: 1,
      cluster: "main",
      systemIdentifier: "7300000000000000001",
      pgVersion: "15",
      walMagic: "0xD110",
      walSegmentSize: 1 << 20,
      walBlockSize: 8192,
      createdAt: "2026-11-21T12:00:00.000Z",
    },
    atomicIfAbsent: true,
  };
  const now = new Date("2026-11-21T12:00:00Z");

  it("is one file per repository and cluster, 0600 in a 0700 directory", async () => {
    const cache = repoFactsCache(join(walDir, "x"), "s3://b/p", "main", memoryLogger());
    await cache?.write(facts, now);
    const files = await readdir(join(walDir, ".pgha"));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^repo-[0-9a-f]{16}\.json$/);
    expect((await stat(join(walDir, ".pgha"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(walDir, ".pgha", files[0] ?? ""))).mode & 0o777).toBe(0o600);
    expect(await cache?.read(now)).toEqual(facts);
    expect(await cache?.read(new Date(now.getTime() + FRESH_MS))).toBeUndefined();
    expect(await cache?.read(new Date(now.getTime() - 1000))).toBeUndefined();
    for (const [repo, cluster] of [
      ["s3://b/p at http://other", "main"],
      ["s3://b/p", "other"],
    ] as const) {
      expect(
        await repoFactsCache(join(walDir, "x"), repo, cluster, memoryLogger())?.read(now),
      ).toBeUndefined();
    }
  });

  it("ignores a corrupt file, and a failure to write never fails a push", async () => {
    const cache = repoFactsCache(join(walDir, "x"), "s3://b/p", "main", memoryLogger());
    await cache?.write(facts, now);
    const [file = ""] = await readdir(join(walDir, ".pgha"));
    await writeFile(join(walDir, ".pgha", file), '{"format":1,');
    expect(await cache?.read(now)).toBeUndefined();
    await rm(join(walDir, ".pgha"), { recursive: true });
    await writeFile(join(walDir, ".pgha"), "not a directory");
    await cache?.write(facts, now);
    const inner = new MemoryStore();
    expect((await push(inner, true, await segment(1))).outcome.status).toBe("stored");
  });

  it.skipIf(process.geteuid?.() !== 0 || !serverUser())(
    "is written only by the owner of pg_wal: root reads it, never leaves files there",
    async () => {
      const owner = serverUser();
      if (!owner) return;
      const cache = repoFactsCache(join(walDir, "x"), "s3://b/p", "main", memoryLogger());
      await cache?.write(facts, now); // pg_wal is root's here
      await chown(walDir, owner.uid, owner.gid);
      expect(await cache?.read(now)).toEqual(facts);
      await rm(join(walDir, ".pgha"), { recursive: true });
      await cache?.write(facts, now);
      expect(await readdir(walDir)).toEqual([]);
    },
  );
});
