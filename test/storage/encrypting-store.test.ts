/**
 * The encryption layer over a memory store: what it stores is age (the codec opens it with
 * the identity), what it reads back is the body as given; damage, substitution, plain
 * objects and missing identities fail on one line; the marker keeps plain and encrypted
 * writers apart; rekey rewraps in place and resumes.
 */
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { EncryptionSettings } from "../../src/config/load.js";
import { decryptBytes, generateX25519Identity } from "../../src/crypto/age.js";
import { IntegrityError, RefusedError, UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { readMarker } from "../../src/repository/encryption-marker.js";
import { ENCRYPTION_MARKER_KEY } from "../../src/repository/keys.js";
import { applyRekey, planRekey, rewrapObject } from "../../src/repository/rekey.js";
import { agePayloadSize, EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys, recipientsFingerprint } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { PlainGuardStore } from "../../src/storage/plain-guard.js";
import { readAll } from "../../src/storage/streams.js";
import { encryptionSettings } from "../helpers/builders.js";
import { fileTempDirs } from "../helpers/temp-dir.js";

const madeDir = fileTempDirs();

const WAL = "v1/clusters/main/wal/0000000100000000/000000010000000000000001";
const MANIFEST = "v1/clusters/main/backups/20261201T000000Z/manifest.json";

async function identityFile(...secrets: string[]): Promise<string> {
  const dir = madeDir(await mkdtemp(join(tmpdir(), "pgha-enc-")));
  const file = join(dir, "key.txt");
  await writeFile(file, `${secrets.join("\n")}\n`, { mode: 0o600 });
  return file;
}

function encrypting(raw: ObjectStore, s: EncryptionSettings): EncryptingStore {
  const mode = s.passphrase !== undefined || s.passphraseFile !== undefined ? "passphrase" : "keys";
  return new EncryptingStore(raw, raw, new EncryptionKeys(mode, s), memoryLogger());
}

/** Read whole: decrypted in one call (DecryptedBody.readWhole). */
async function read(store: ObjectStore, key: string): Promise<Buffer> {
  return readAll((await store.get(key)).body);
}

/** Read as a stream: decrypted chunk by chunk. */
async function readStreamed(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await store.get(key)).body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rawBody(raw: MemoryStore, key: string): Promise<Buffer> {
  return readAll((await raw.get(key)).body);
}

// Generous: the machine these run on is shared and often loaded.
describe("encrypting store", { timeout: 30_000 }, async () => {
  const a = generateX25519Identity();
  const b = generateX25519Identity();
  const fileA = await identityFile(a.secretKey);

  it("stores age that the identity opens, and reads back what it was given (buffer and stream)", async () => {
    const raw = new MemoryStore();
    const store = encrypting(
      raw,
      encryptionSettings({ recipients: [a.publicKey], identityFile: fileA }),
    );
    const small = Buffer.from("a small manifest");
    const large = Buffer.alloc(300_000, 7);
    await store.put(MANIFEST, small, { metadata: { "pgha-format": "1" } });
    await store.put(WAL, Readable.from([large.subarray(0, 1000), large.subarray(1000)]));
    const stored = await rawBody(raw, WAL);
    expect(stored.subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
    expect(decryptBytes(stored, [{ type: "x25519", secretKey: a.secretKey }])).toEqual(large);
    expect(await read(store, MANIFEST)).toEqual(small);
    expect(await read(store, WAL)).toEqual(large);
    expect(await readStreamed(store, WAL)).toEqual(large);
    const head = await store.head(MANIFEST);
    expect(head?.metadata["pgha-format"]).toBe("1");
    expect(head?.metadata["pgha-encryption"]).toBe("age");
    // The marker is there, plain JSON, with the recipients.
    expect((await readMarker(raw))?.recipients).toEqual([a.publicKey]);
  });

  it("tells which listed sizes fit a body size, for one recipient and several", async () => {
    for (const recipients of [[a.publicKey], [a.publicKey, b.publicKey]]) {
      const raw = new MemoryStore();
      const store = encrypting(raw, encryptionSettings({ recipients, identityFile: fileA }));
      for (const size of [0, 1, 65535, 65536, 65537, 200_000]) {
        await store.put(`${WAL}${size}`, Buffer.alloc(size));
        const listed = (await raw.head(`${WAL}${size}`))?.size ?? -1;
        expect(store.listedSizeFits(listed, size)).toBe(true);
        expect(store.listedSizeFits(listed - 1, size)).toBe(false);
        expect(store.listedSizeFits(listed + 16, size)).toBe(false);
        expect(listed).toBe(70 + 98 * recipients.length + agePayloadSize(size));
      }
    }
  });

  it.each([
    ["read whole", read],
    ["read as a stream", readStreamed],
  ])(
    "fails authentication (exit 6) on a flipped byte, a truncated body and a swapped body (%s)",
    async (_how, read) => {
      const raw = new MemoryStore();
      const store = encrypting(
        raw,
        encryptionSettings({ recipients: [a.publicKey], identityFile: fileA }),
      );
      await store.put(WAL, Buffer.alloc(100_000, 1));
      await store.put(MANIFEST, Buffer.from("{}"));
      const body = await rawBody(raw, WAL);
      const meta = (await raw.head(WAL))?.metadata ?? {};
      const flipped = Buffer.from(body);
      flipped[body.length - 100] = (flipped[body.length - 100] ?? 0) ^ 1;
      await raw.put(WAL, flipped, { metadata: meta });
      const error = await read(store, WAL).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IntegrityError);
      expect((error as IntegrityError).exit).toBe("integrity");
      expect((error as Error).message).toMatch(/failed authentication/);
      expect((error as Error).message).not.toMatch(/\n/);
      await raw.put(WAL, body.subarray(0, body.length - 10), { metadata: meta });
      await expect(read(store, WAL)).rejects.toBeInstanceOf(IntegrityError);
      // A body encrypted to another key (someone else's object put here) does not open.
      const other = encrypting(
        new MemoryStore(),
        encryptionSettings({ recipients: [b.publicKey] }),
      );
      await other.put(WAL, Buffer.alloc(10));
      const foreign = await rawBody((other as unknown as { inner: MemoryStore }).inner, WAL);
      await raw.put(WAL, foreign, { metadata: meta });
      const noMatch = await read(store, WAL).catch((e: unknown) => e);
      expect((noMatch as IntegrityError).exit).toBe("integrity");
      expect((noMatch as Error).message).toMatch(/cannot decrypt .*no identity matches/);
    },
  );

  it("refuses a plain object in an encrypted repository, and reading without an identity", async () => {
    const raw = new MemoryStore();
    const store = encrypting(
      raw,
      encryptionSettings({ recipients: [a.publicKey], identityFile: fileA }),
    );
    await store.put(MANIFEST, Buffer.from("{}"));
    await raw.put(WAL, Buffer.from("plain"), { metadata: { "pgha-format": "1" } });
    const plain = await read(store, WAL).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(IntegrityError);
    expect((plain as Error).message).toMatch(/is not encrypted/);
    const writer = encrypting(raw, encryptionSettings({ recipients: [a.publicKey] }));
    const missing = await read(writer, MANIFEST).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect((missing as Error).message).toMatch(/no identity to read it is set/);
  });

  it("refuses an identity file that group or others may read, and one that is not age", async () => {
    const file = await identityFile(a.secretKey);
    await chmod(file, 0o640);
    const raw = new MemoryStore();
    const store = encrypting(
      raw,
      encryptionSettings({ recipients: [a.publicKey], identityFile: file }),
    );
    await store.put(MANIFEST, Buffer.from("{}"));
    const loose = await read(store, MANIFEST).catch((e: unknown) => e);
    expect(loose).toBeInstanceOf(UsageError);
    expect((loose as UsageError).message).toMatch(/may be read by group or others \(mode 0640\)/);
    expect((loose as UsageError).hint).toMatch(/chmod 600/);
    const junk = await identityFile("not a key");
    const bad = encrypting(raw, encryptionSettings({ identityFile: junk }));
    await expect(read(bad, MANIFEST)).rejects.toBeInstanceOf(UsageError);
  });

  it("does not encrypt into a plain repository that holds objects", async () => {
    const raw = new MemoryStore();
    await raw.put(WAL, Buffer.from("plain wal"));
    const store = encrypting(raw, encryptionSettings({ recipients: [a.publicKey] }));
    await expect(store.put(MANIFEST, Buffer.from("{}"))).rejects.toBeInstanceOf(RefusedError);
    expect(await raw.head(ENCRYPTION_MARKER_KEY)).toBeUndefined();
  });

  it("keeps a pgha without settings out: no plain writes, a clear line on reads", async () => {
    const raw = new MemoryStore();
    const store = encrypting(raw, encryptionSettings({ recipients: [a.publicKey] }));
    await store.put(WAL, Buffer.from("wal"));
    await store.put("v1/clusters/main/identity.json", Buffer.from("{}"));
    const plain = new PlainGuardStore(raw, raw);
    const write = await plain.put(MANIFEST, Buffer.from("{}")).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(RefusedError);
    expect((write as Error).message).toMatch(/is encrypted .* nothing was written/);
    const readError = await read(plain, WAL).catch((e: unknown) => e);
    expect(readError).toBeInstanceOf(UsageError);
    expect((readError as Error).message).toMatch(
      /is encrypted \(age\), and no encryption settings/,
    );
    // Locks and identity stay plain: a plain pgha can still take a lock.
    await plain.put("v1/clusters/main/locks/cluster.json", Buffer.from("{}"));
    // identity.json says it without a HEAD of the marker.
    const fresh = new PlainGuardStore(raw, new MemoryStore());
    await fresh.get("v1/clusters/main/identity.json");
    expect(await fresh.encryptionMarker()).toBe(true);
  });

  it("keeps a pgha without settings from starting a new cluster in an encrypted repository", async () => {
    const raw = new MemoryStore();
    await encrypting(raw, encryptionSettings({ recipients: [a.publicKey] })).put(
      WAL,
      Buffer.from("wal"),
    );
    const plain = new PlainGuardStore(raw, raw);
    // The new cluster's first push writes its identity.json, which cannot say the
    // repository is encrypted: the marker is asked for, and nothing is written.
    const identity = await plain
      .put("v1/clusters/other/identity.json", Buffer.from("{}"), { ifAbsent: true })
      .catch((e: unknown) => e);
    expect(identity).toBeInstanceOf(RefusedError);
    expect(await raw.head("v1/clusters/other/identity.json")).toBeUndefined();
    const wal = await plain
      .put("v1/clusters/other/wal/0000000100000000/000000010000000000000001", Buffer.from("w"))
      .catch((e: unknown) => e);
    expect(wal).toBeInstanceOf(RefusedError);
  });

  it("passphrase mode: the repository keeps its own key, a wrong passphrase is one line", async () => {
    const raw = new MemoryStore();
    const store = encrypting(raw, encryptionSettings({ passphrase: "correct horse" }));
    await store.put(WAL, Buffer.from("segment"));
    const marker = await readMarker(raw);
    expect(marker?.mode).toBe("passphrase");
    const reader = encrypting(raw, encryptionSettings({ passphrase: "correct horse" }));
    expect((await read(reader, WAL)).toString()).toBe("segment");
    const wrong = encrypting(raw, encryptionSettings({ passphrase: "wrong" }));
    const error = await read(wrong, WAL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/the passphrase does not unlock/);
  }, 30_000);

  it("rekey rewraps to a new set, keeps payloads, skips what is done, and resumes", async () => {
    const raw = new MemoryStore();
    const store = encrypting(
      raw,
      encryptionSettings({ recipients: [a.publicKey], identityFile: fileA }),
    );
    const keys = Array.from({ length: 5 }, (_, i) => `${WAL}${i}`);
    for (const key of keys) await store.put(key, Buffer.alloc(70_000, keys.indexOf(key)));
    const before = await rawBody(raw, keys[0] as string);
    const both = await identityFile(a.secretKey, b.secretKey);
    const kb = new EncryptionKeys(
      "keys",
      encryptionSettings({ recipients: [b.publicKey], identityFile: both }),
    );
    const fingerprint = recipientsFingerprint([b.publicKey]);
    const deps = {
      store: raw,
      identities: await kb.identities(),
      recipients: kb.recipientsOf([b.publicKey]),
      jobs: 2,
      now: () => new Date(),
    };
    // An interrupted run: two objects rewrapped, then it stopped.
    await rewrapObject(deps, keys[0] as string, fingerprint);
    await rewrapObject(deps, keys[1] as string, fingerprint);
    const plan = await planRekey(raw, [b.publicKey], fingerprint);
    expect(plan.rewrap.map((i) => i.key)).toEqual(keys.slice(2));
    expect(plan.current).toBe(2);
    await applyRekey(deps, plan);
    expect((await planRekey(raw, [b.publicKey], fingerprint)).rewrap).toEqual([]);
    expect((await readMarker(raw))?.recipients).toEqual([b.publicKey]);
    // Same payload behind a new header.
    const after = await rawBody(raw, keys[0] as string);
    expect(after.subarray(after.length - 70_000)).toEqual(before.subarray(before.length - 70_000));
    const fileB = await identityFile(b.secretKey);
    const readerB = encrypting(raw, encryptionSettings({ identityFile: fileB }));
    for (const [i, key] of keys.entries())
      expect(await read(readerB, key)).toEqual(Buffer.alloc(70_000, i));
    const readerA = encrypting(raw, encryptionSettings({ identityFile: fileA }));
    await expect(read(readerA, keys[3] as string)).rejects.toBeInstanceOf(IntegrityError);
  });
});
