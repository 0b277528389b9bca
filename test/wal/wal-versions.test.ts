/**
 * One WAL name with different content is never lost where the store ignores conditional
 * writes (issue 12, point 4): pushes use content-addressed keys there, fetch finds either
 * layout and refuses a name stored with two contents, planners and prune see both layouts.
 * The store is the memory store behaving like s3rver (put(ifAbsent) replaces).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exitCodeOf, NotFoundError, WalConflictError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { walKey } from "../../src/repository/keys.js";
import { encodeContentMeta } from "../../src/repository/object-meta.js";
import { gatherRestoreFacts } from "../../src/restore/facts.js";
import { planRestore } from "../../src/restore/plan.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type {
  ListEntry,
  ObjectInfo,
  ObjectStore,
  PutBody,
  PutOptions,
  StoredObject,
} from "../../src/storage/object-store.js";
import { fetchWalFile } from "../../src/wal/fetch.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { type PushDeps, pushWalFile } from "../../src/wal/push.js";
import { listWalVersions } from "../../src/wal/versions.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { makeSegment, segmentName } from "../helpers/segments.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-versions-");

const NAME = segmentName(1, 0, 3);
const FILE = parseWalFileName(NAME) ?? (undefined as never);

/** Two different files of one name, in two directories (two servers' pg_wal). */
async function twoContents(): Promise<[string, string]> {
  const paths: string[] = [];
  for (const host of ["a", "b"]) {
    const path = join(temp.path, host, NAME);
    await rm(join(temp.path, host), { recursive: true, force: true });
    await mkdir(join(temp.path, host));
    await writeFile(path, makeSegment(1, 0, 3));
    paths.push(path);
  }
  return paths as [string, string];
}

function pushDeps(store: ObjectStore): PushDeps {
  return {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 1 },
    log: memoryLogger(),
    now: () => new Date("2026-11-21T12:00:00Z"),
  };
}

const fetchDeps = (store: ObjectStore) => ({ store, cluster: "main", log: memoryLogger() });

/** Holds every put until `count` puts are waiting: both racers list before either writes. */
class GatedStore implements ObjectStore {
  readonly url: string;
  private waiting: (() => void)[] = [];
  constructor(
    private readonly inner: MemoryStore,
    private readonly count: number,
  ) {
    this.url = inner.url;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(key);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  async put(key: string, body: PutBody, options?: PutOptions): Promise<StoredObject> {
    if (key.includes("/wal/")) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        if (this.waiting.length === this.count) for (const go of this.waiting) go();
      });
    }
    return this.inner.put(key, body, options);
  }
  list(prefix: string): AsyncIterable<ListEntry> {
    return this.inner.list(prefix);
  }
  durable(key: string) {
    return this.inner.durable(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
}

describe("WAL where the store ignores conditional writes", () => {
  it("two racing pushes of one name with different content: both exit 5, both versions stay, fetch names both", async () => {
    const inner = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    const [a, b] = await twoContents();
    // The cluster's identity first, so that the racers only race on the WAL name.
    const earlier = join(temp.path, segmentName(1, 0, 2));
    await writeFile(earlier, makeSegment(1, 0, 2));
    await pushWalFile(pushDeps(inner), earlier);
    const gated = new GatedStore(inner, 2);
    const results = await Promise.allSettled([
      pushWalFile(pushDeps(gated), a),
      pushWalFile(pushDeps(gated), b),
    ]);
    for (const result of results) {
      expect(result.status).toBe("rejected");
      if (result.status === "rejected") {
        expect(result.reason).toBeInstanceOf(WalConflictError);
        expect(exitCodeOf(result.reason)).toBe(5);
      }
    }
    const versions = await listWalVersions(inner, "main", FILE);
    expect(versions).toHaveLength(2);
    const fetched = fetchWalFile(fetchDeps(inner), NAME, join(temp.path, "RECOVERYXLOG"));
    await expect(fetched).rejects.toBeInstanceOf(WalConflictError);
    await expect(fetched).rejects.toThrow(versions[0]?.key ?? "?");
    await expect(fetched).rejects.toThrow(versions[1]?.key ?? "?");
  });

  it("never loses a version in 10 concurrent rounds: at least one push exits 5, every stored version is retrievable", async () => {
    for (let round = 0; round < 10; round++) {
      const store = new MemoryStore(`round-${round}`, { ignoreIfAbsent: true });
      const [a, b] = await twoContents();
      const results = await Promise.allSettled([
        pushWalFile(pushDeps(store), a),
        pushWalFile(pushDeps(store), b),
      ]);
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused.length, `round ${round}`).toBeGreaterThanOrEqual(1);
      for (const r of refused) {
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(WalConflictError);
      }
      const versions = await listWalVersions(store, "main", FILE);
      // Each push that exited 0 has its content stored under its own key.
      for (const [i, r] of results.entries()) {
        if (r.status !== "fulfilled") continue;
        expect(versions.map((v) => v.key)).toContain(r.value.key);
        const dest = join(temp.path, `fetched-${i}`);
        if (versions.length === 1) {
          await fetchWalFile(fetchDeps(store), NAME, dest);
          expect((await readFile(dest)).equals(await readFile([a, b][i] ?? ""))).toBe(true);
        }
      }
      if (versions.length === 2) {
        await expect(
          fetchWalFile(fetchDeps(store), NAME, join(temp.path, "x")),
        ).rejects.toBeInstanceOf(WalConflictError);
      }
    }
  });

  it("stores under <name>.<sha256>; a second push of the same content is already archived; fetch finds it", async () => {
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    const [a] = await twoContents();
    const first = await pushWalFile(pushDeps(store), a);
    expect(first.status).toBe("stored");
    expect(first.key).toBe(`${walKey("main", FILE)}.${first.sha256}`);
    expect(await store.head(walKey("main", FILE))).toBeUndefined();
    expect((await store.head(first.key))?.metadata["pgha-format"]).toBe("2");
    const again = await pushWalFile(pushDeps(store), a);
    expect(again.status).toBe("already-archived");
    const dest = join(temp.path, "RECOVERYXLOG");
    const fetched = await fetchWalFile(fetchDeps(store), NAME, dest);
    expect(fetched.key).toBe(first.key);
    expect((await readFile(dest)).equals(await readFile(a))).toBe(true);
    await expect(fetchWalFile(fetchDeps(store), segmentName(1, 0, 4), dest)).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("a long-running fetcher lists first once it found the content-addressed layout", async () => {
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    const [a] = await twoContents();
    await pushWalFile(pushDeps(store), a);
    const layout = { listFirst: false };
    const gets: string[] = [];
    const counting: ObjectStore = Object.assign(Object.create(store) as MemoryStore, {
      get: (key: string) => {
        gets.push(key);
        return store.get(key);
      },
    });
    const deps = { ...fetchDeps(counting), layout };
    await fetchWalFile(deps, NAME, join(temp.path, "one"));
    expect(layout.listFirst).toBe(true);
    expect(gets).toHaveLength(2); // the plain key (missing), then the version
    gets.length = 0;
    await fetchWalFile(deps, NAME, join(temp.path, "two"));
    expect(gets).toHaveLength(1);
    expect((await readFile(join(temp.path, "two"))).equals(await readFile(a))).toBe(true);
    // Back on a repository with plain keys it goes back to trying them first.
    const plain = new MemoryStore("aws-like");
    await pushWalFile(pushDeps(plain), a);
    await fetchWalFile({ ...fetchDeps(plain), layout }, NAME, join(temp.path, "three"));
    expect(layout.listFirst).toBe(false);
  });

  it("refuses other content before writing anything once a name is archived", async () => {
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    const [a, b] = await twoContents();
    const first = await pushWalFile(pushDeps(store), a);
    await expect(pushWalFile(pushDeps(store), b)).rejects.toBeInstanceOf(WalConflictError);
    expect((await listWalVersions(store, "main", FILE)).map((v) => v.key)).toEqual([first.key]);
  });

  it("reads the plain key of an existing repository: same content already archived, other content a conflict", async () => {
    const old = new MemoryStore("v1");
    const [a, b] = await twoContents();
    const plain = await pushWalFile(pushDeps(old), a); // an atomic store: the plain key
    expect(plain.key).toBe(walKey("main", FILE));
    // The same repository now behind a server that ignores If-None-Match.
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    for await (const entry of old.list("")) {
      const { info, body } = await old.get(entry.key);
      await store.put(entry.key, body, { metadata: info.metadata });
    }
    expect((await pushWalFile(pushDeps(store), a)).status).toBe("already-archived");
    await expect(pushWalFile(pushDeps(store), b)).rejects.toBeInstanceOf(WalConflictError);
    expect((await listWalVersions(store, "main", FILE)).map((v) => v.key)).toEqual([plain.key]);
  });

  it("restore facts see content-addressed names, and a plan needing a conflicting segment is refused naming both", async () => {
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    const [a, b] = await twoContents();
    const first = await pushWalFile(pushDeps(store), a);
    const raw = await readFile(b);
    const sha = createHash("sha256").update(raw).digest("hex");
    // The racer's copy, as a push that lost the race leaves it.
    await store.put(`${walKey("main", FILE)}.${sha}`, raw, {
      metadata: encodeContentMeta({ sha256: sha, rawSize: raw.length, compression: "none" }),
    });
    const facts = await gatherRestoreFacts(store, "main", memoryLogger());
    expect([...facts.wal.keys()]).toEqual([NAME]);
    expect(facts.conflicts?.get(NAME)).toHaveLength(2);
    facts.backups.push(
      makeBackupManifest({
        id: "20261121T110000Z",
        timeline: 1,
        startWal: NAME,
        stopWal: NAME,
        startLsn: "0/300028",
        stopLsn: "0/300100",
        walSegmentSize: 1 << 20,
      }),
    );
    const outcome = planRestore(facts, {
      target: { kind: "latest" },
      timeline: "latest",
      exclusive: false,
      action: "pause",
      backupId: undefined,
    });
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      const reason = outcome.refusal.reasons.join("; ");
      expect(reason).toContain(first.key);
      expect(reason).toContain(`${walKey("main", FILE)}.${sha}`);
    }
  });
});
