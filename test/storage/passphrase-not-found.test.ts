/**
 * Passphrase mode: a wal-fetch of a segment that is not archived answers "not found"
 * without unlocking the repository key (no GET of v1/encryption-key.age, so no scrypt,
 * about a second a call for a standby polling for WAL not archived yet), even with a wrong
 * passphrase; a segment that is there still needs the right one (same error as before).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { EncryptionSettings } from "../../src/config/load.js";
import { NotFoundError, UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { ENCRYPTION_KEY_KEY, identityKey, walKey } from "../../src/repository/keys.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { ObjectInfo } from "../../src/storage/object-store.js";
import { fetchWalFile } from "../../src/wal/fetch.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeSegment, segmentName } from "../helpers/segments.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const dirs = freshDirPerTest("pgha-pp-nf-");

/** A memory store that counts the reads of the repository key. */
class CountingStore extends MemoryStore {
  keyReads = 0;
  override get(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    if (key === ENCRYPTION_KEY_KEY) this.keyReads++;
    return super.get(key);
  }
}

function passphraseStore(raw: MemoryStore, passphrase: string): EncryptingStore {
  const settings: EncryptionSettings = {
    recipients: undefined,
    identityFile: undefined,
    passphraseFile: undefined,
    passphrase,
  };
  return new EncryptingStore(raw, raw, new EncryptionKeys("passphrase", settings), memoryLogger());
}

const CLUSTER = "main";
const ARCHIVED = segmentName(1, 0, 1);
const NOT_YET = segmentName(1, 0, 2);

async function archiveOne(raw: MemoryStore): Promise<void> {
  const writer = passphraseStore(raw, "correct horse");
  const body = makeSegment(1, 0, 1);
  const file = parseWalFileName(ARCHIVED);
  if (!file) throw new Error(ARCHIVED);
  const sha256 = createHash("sha256").update(body).digest("hex");
  await writer.put(walKey(CLUSTER, file), body, {
    metadata: encodeWalMeta({ sha256, rawSize: body.length, compression: "none" }, new Date()),
  });
  await writer.put(identityKey(CLUSTER), Buffer.from("{}"));
}

// Generous: scrypt takes about a second, and the machine is shared.
describe("passphrase mode, wal-fetch", { timeout: 60_000 }, () => {
  it("a segment not archived is not found without reading the repository key", async () => {
    const raw = new CountingStore();
    await archiveOne(raw);
    raw.keyReads = 0;
    const dir = dirs.path;
    const deps = {
      store: passphraseStore(raw, "correct horse"),
      cluster: CLUSTER,
      log: memoryLogger(),
    };
    await expect(fetchWalFile(deps, NOT_YET, join(dir, "a"))).rejects.toBeInstanceOf(NotFoundError);
    expect(raw.keyReads).toBe(0);
    // Once there is something to decrypt, the key is read (once for the process).
    await fetchWalFile(deps, ARCHIVED, join(dir, "b"));
    await expect(fetchWalFile(deps, NOT_YET, join(dir, "c"))).rejects.toBeInstanceOf(NotFoundError);
    expect(raw.keyReads).toBe(1);
  });

  it("with a wrong passphrase: not archived is still not found, archived fails as before", async () => {
    const raw = new CountingStore();
    await archiveOne(raw);
    raw.keyReads = 0;
    const dir = dirs.path;
    const deps = { store: passphraseStore(raw, "wrong"), cluster: CLUSTER, log: memoryLogger() };
    await expect(fetchWalFile(deps, NOT_YET, join(dir, "a"))).rejects.toBeInstanceOf(NotFoundError);
    expect(raw.keyReads).toBe(0);
    const error = await fetchWalFile(deps, ARCHIVED, join(dir, "b")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exit).toBe("usage");
    expect((error as Error).message).toMatch(/the passphrase does not unlock/);
  });
});

describe("encrypted get, a body that fails while the identity is read", () => {
  it("fails the get (no unhandled 'error' event ending the process)", async () => {
    const raw = new MemoryStore();
    await raw.put("clusters/main/wal/x", Buffer.from("not read"), {
      metadata: { "pgha-encryption": "age" },
    });
    /** Its bodies fail 10 ms after they are opened. */
    const failing = Object.create(raw) as MemoryStore;
    failing.get = async (key: string) => {
      const got = await raw.get(key);
      setTimeout(() => got.body.destroy(new Error("connection reset")), 10);
      return got;
    };
    /** An identity that takes 100 ms (passphrase mode: a GET and scrypt). */
    const slow = {
      identities: () => new Promise<never[]>((resolve) => setTimeout(() => resolve([]), 100)),
    } as unknown as EncryptionKeys;
    const store = new EncryptingStore(failing, failing, slow, memoryLogger());
    await expect(store.get("clusters/main/wal/x")).rejects.toThrow(/connection reset/);
  });
});
