/**
 * Reading an encrypted repository with the wrong identity, or with no encryption
 * settings: every object fails alike, so the planner's facts and the catalog listings
 * stop on one clear error (exit 6, or exit 2) instead of leaving every backup out and
 * reporting an empty repository. The history file's read used to lose the decryption
 * error in a pipe (an uncaught exception: exit 70, and a read that never settled).
 */
import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readEach } from "../../src/cli/catalog.js";
import type { EncryptionSettings } from "../../src/config/load.js";
import { generateX25519Identity } from "../../src/crypto/age.js";
import { IdentityMismatchError, IntegrityError, UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { walKey } from "../../src/repository/keys.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { gatherArchiveFacts, gatherRestoreFacts } from "../../src/restore/facts.js";
import { EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { PlainGuardStore } from "../../src/storage/plain-guard.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { fileTempDirs } from "../helpers/temp-dir.js";

const madeDir = fileTempDirs();

async function identityFile(secret: string): Promise<string> {
  const dir = madeDir(await mkdtemp(join(tmpdir(), "pgha-wrong-id-")));
  const file = join(dir, "key.txt");
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

function keys(recipients: string[], identityFile: string): EncryptionKeys {
  const s: EncryptionSettings = {
    recipients,
    identityFile,
    passphraseFile: undefined,
    passphrase: undefined,
  };
  return new EncryptionKeys("keys", s);
}

describe("reading an encrypted repository with the wrong identity or none", {
  timeout: 30_000,
}, async () => {
  const a = generateX25519Identity();
  const b = generateX25519Identity();
  const fileA = await identityFile(a.secretKey);
  const fileB = await identityFile(b.secretKey);

  /** A repository encrypted to a: timeline 2's history file, optionally a backup. */
  async function repository(withBackup: boolean): Promise<MemoryStore> {
    const raw = new MemoryStore();
    const store = new EncryptingStore(raw, raw, keys([a.publicKey], fileA), memoryLogger());
    const history = Buffer.from("1\t0/3000000\tno recovery target specified\n");
    const file = parseWalFileName("00000002.history");
    if (!file) throw new Error("name");
    await store.put(walKey("main", file), history, {
      metadata: encodeWalMeta(
        {
          sha256: createHash("sha256").update(history).digest("hex"),
          rawSize: history.length,
          compression: "none",
        },
        new Date("2026-12-01T12:00:00Z"),
      ),
    });
    if (withBackup)
      await writeBackupManifest(store, makeBackupManifest({ id: "20261201T120000Z" }));
    return raw;
  }

  it("the history file's decryption failure rejects the facts with exit 6 (it was an uncaught exception)", async () => {
    const raw = await repository(false);
    const wrong = new EncryptingStore(raw, raw, keys([a.publicKey], fileB), memoryLogger());
    const facts = gatherArchiveFacts(wrong, "main", []);
    await expect(facts).rejects.toBeInstanceOf(IdentityMismatchError);
    await expect(facts).rejects.toMatchObject({ exit: "integrity" });
    // The right identity reads it.
    const right = new EncryptingStore(raw, raw, keys([a.publicKey], fileA), memoryLogger());
    expect((await gatherArchiveFacts(right, "main", [])).histories.get(2)).toContain("0/3000000");
  });

  it("the planner's facts stop on the wrong identity and on missing settings instead of leaving every backup out", async () => {
    const raw = await repository(true);
    const wrong = new EncryptingStore(raw, raw, keys([a.publicKey], fileB), memoryLogger());
    await expect(gatherRestoreFacts(wrong, "main", memoryLogger())).rejects.toBeInstanceOf(
      IdentityMismatchError,
    );
    const plain = new PlainGuardStore(raw, raw);
    await expect(gatherRestoreFacts(plain, "main", memoryLogger())).rejects.toBeInstanceOf(
      UsageError,
    );
  });

  it("a listing stops on a settings error but reports and skips one damaged item", async () => {
    const log = memoryLogger();
    const read = (error: Error) => async (id: string) => {
      if (id === "bad") throw error;
      return id;
    };
    expect(
      await readEach(["ok", "bad"], read(new IntegrityError("damaged")), "backup", log),
    ).toEqual(["ok"]);
    await expect(
      readEach(["ok", "bad"], read(new IdentityMismatchError("cannot decrypt")), "backup", log),
    ).rejects.toBeInstanceOf(IdentityMismatchError);
    await expect(
      readEach(["ok", "bad"], read(new UsageError("no settings")), "backup", log),
    ).rejects.toBeInstanceOf(UsageError);
  });
});
