/**
 * Encryption errors that had no hint: `key generate` that cannot write its file, an empty
 * passphrase file, a repository key that is not an X25519 identity. Each is one line, a
 * HINT and its documented exit code.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { keyGenerateCommand } from "../../src/cli/commands/repo.js";
import { encryptBytes } from "../../src/crypto/age.js";
import { LocalIoError, type PghaError, UsageError } from "../../src/errors.js";
import { ENCRYPTION_KEY_KEY } from "../../src/repository/keys.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { encryptionSettings } from "../helpers/builders.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-enc-hints-");

function expectOneLineWithHint(error: unknown, exit: string): PghaError {
  const e = error as PghaError;
  expect(e.exit).toBe(exit);
  expect(e.message).not.toContain("\n");
  expect(e.hint).toBeTruthy();
  expect(e.hint).not.toContain("\n");
  return e;
}

describe("encryption hints", { timeout: 60_000 }, () => {
  it("key generate into a directory that does not exist: localIo with a hint", async () => {
    const file = join(temp.path, "no-such-dir", "backup.key");
    const error = await keyGenerateCommand(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalIoError);
    const e = expectOneLineWithHint(error, "localIo");
    expect(e.message).toMatch(/cannot write .*backup\.key/);
    expect(e.hint).toMatch(/no-such-dir must exist and be writable/);
  });

  it("an empty passphrase file: usage with a hint", async () => {
    const file = join(temp.path, "passphrase");
    await writeFile(file, "\n", { mode: 0o600 });
    const keys = new EncryptionKeys("passphrase", encryptionSettings({ passphraseFile: file }));
    const error = await keys
      .createRepositoryKey(new MemoryStore(), new Date())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    const e = expectOneLineWithHint(error, "usage");
    expect(e.message).toMatch(/the passphrase file .* is empty/);
    expect(e.hint).toMatch(/first line/);
  });

  it("a repository key that is not an X25519 identity: usage with a hint that names it", async () => {
    const store = new MemoryStore();
    const cipher = encryptBytes(Buffer.from("# not a key\nhello\n"), [
      { type: "scrypt", passphrase: "pw" },
    ]);
    await store.put(ENCRYPTION_KEY_KEY, cipher);
    const keys = new EncryptionKeys("passphrase", encryptionSettings({ passphrase: "pw" }));
    for (const attempt of [
      () => keys.identities(store),
      // A first writer that finds a key already there reads it the same way.
      () => keys.createRepositoryKey(store, new Date()),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      const e = expectOneLineWithHint(error, "usage");
      expect(e.message).toMatch(
        /the repository key .*encryption-key\.age is not an age X25519 identity/,
      );
      expect(e.hint).toMatch(/put back the copy pgha wrote/);
    }
  });
});
