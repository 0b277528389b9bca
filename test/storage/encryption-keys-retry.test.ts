/** EncryptionKeys keeps what it read, but not a failure to read it (encryption-keys.ts). */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateX25519Identity } from "../../src/crypto/age.js";
import { UsageError } from "../../src/errors.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-keys-retry-");

describe("EncryptionKeys.identities", () => {
  it("reads again after a failure instead of failing every later read", async () => {
    const file = join(temp.path, "a.key");
    const keys = new EncryptionKeys("keys", {
      recipients: undefined,
      identityFile: file,
      passphraseFile: undefined,
      passphrase: undefined,
    });
    await expect(keys.identities()).rejects.toBeInstanceOf(UsageError); // not there yet
    const { secretKey } = generateX25519Identity();
    await writeFile(file, `${secretKey}\n`, { mode: 0o600 });
    await expect(keys.identities()).resolves.toHaveLength(1);
  });
});
