/**
 * What the encryption layer adds to a wal-push's requests: the first encrypted push of a
 * repository looks for the marker (and writes it into an empty repository); later pushes
 * with a fresh pg_wal/.pgha/ cache add nothing, and neither does a pgha without settings,
 * which learns the answer from the identity.json its cold push reads anyway.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateX25519Identity } from "../../src/crypto/age.js";
import { RefusedError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type * as Store from "../../src/storage/object-store.js";
import { PlainGuardStore } from "../../src/storage/plain-guard.js";
import { readAll } from "../../src/storage/streams.js";
import { type PushDeps, pushWalFile } from "../../src/wal/push.js";
import { repoFactsCache } from "../../src/wal/repo-facts.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

/** A store that honours conditional writes, recording every request. */
class RecordingStore implements Store.ObjectStore {
  readonly url = "s3://bucket/prefix";
  readonly capabilities: Store.StoreCapabilities = {
    atomicIfAbsent: true,
    atomicReplace: true,
    durableWhenVisible: true,
  };
  readonly requests: string[] = [];
  constructor(readonly inner: MemoryStore) {}
  private log(method: string, key: string) {
    this.requests.push(`${method} ${key.replace(/^v1\/(clusters\/main\/)?/, "")}`);
  }
  async head(key: string) {
    this.log("HEAD", key);
    return this.inner.head(key);
  }
  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    this.log("GET", key);
    return this.inner.get(key);
  }
  async put(key: string, body: Store.PutBody, options: Store.PutOptions = {}) {
    this.log("PUT", key);
    return { ...(await this.inner.put(key, body, options)), verified: true };
  }
  list(prefix: string) {
    this.log("LIST", prefix);
    return this.inner.list(prefix);
  }
  async durable() {}
  async delete(key: string) {
    await this.inner.delete(key);
  }
}

let dir: string;
let walDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-push-enc-"));
  walDir = join(dir, "pg_wal");
  await mkdir(walDir);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function segment(n: number) {
  const path = join(walDir, segmentName(1, 0, n));
  await writeFile(path, makeSegment(1, 0, n));
  return path;
}

const key = generateX25519Identity();

async function push(inner: MemoryStore, path: string, encrypted: boolean) {
  const recording = new RecordingStore(inner);
  const store = encrypted
    ? new EncryptingStore(
        recording,
        recording,
        new EncryptionKeys("keys", {
          recipients: [key.publicKey],
          identityFile: undefined,
          passphraseFile: undefined,
          passphrase: undefined,
        }),
        memoryLogger(),
      )
    : new PlainGuardStore(recording, recording);
  const log = memoryLogger();
  const deps: PushDeps = {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 1 },
    log,
    now: () => new Date(),
    facts: repoFactsCache(path, store.url, "main", log),
  };
  const outcome = await pushWalFile(deps, path);
  return { outcome, requests: recording.requests };
}

describe("wal-push requests with the encryption layer", () => {
  it("encrypted: the first push marks the repository, the next ones make the PUT alone", async () => {
    const inner = new MemoryStore();
    const first = await push(inner, await segment(1), true);
    expect(first.requests).toEqual([
      "GET identity.json",
      "PUT identity.json",
      "GET encryption.json",
      "LIST ", // the repository (v1/): empty but for identity.json, marked as encrypted
      "HEAD identity.json",
      "PUT encryption.json",
      "PUT wal/0000000100000000/000000010000000000000001",
      "HEAD wal/0000000100000000/000000010000000000000001",
    ]);
    const second = await push(inner, await segment(2), true);
    expect(second.requests).toEqual(["PUT wal/0000000100000000/000000010000000000000002"]);
    const stored = await readAll(
      (await inner.get("v1/clusters/main/wal/0000000100000000/000000010000000000000002")).body,
    );
    expect(stored.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
  });

  it("without settings: no request of its own, and a refusal in an encrypted repository", async () => {
    const plain = new MemoryStore();
    const first = await push(plain, await segment(1), false);
    expect(first.requests).toEqual([
      "GET identity.json",
      // A new cluster: its identity.json cannot tell yet, so one HEAD of the marker
      // before writing it (and none after: a store with atomic conditional writes does
      // not read identity.json back).
      "HEAD encryption.json",
      "PUT identity.json",
      "PUT wal/0000000100000000/000000010000000000000001",
      "HEAD wal/0000000100000000/000000010000000000000001",
    ]);
    const second = await push(plain, await segment(2), false);
    expect(second.requests).toEqual(["PUT wal/0000000100000000/000000010000000000000002"]);

    const encrypted = new MemoryStore();
    await push(encrypted, await segment(1), true);
    // Another data directory: a cold cache. identity.json tells, without a HEAD.
    walDir = join(dir, "other", "pg_wal");
    await mkdir(walDir, { recursive: true });
    const refused = await push(encrypted, await segment(2), false).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedError);
    expect(
      await encrypted.head("v1/clusters/main/wal/0000000100000000/000000010000000000000002"),
    ).toBeUndefined();
  });
});
