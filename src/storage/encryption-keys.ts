/**
 * The keys of an encrypted repository, from the settings (README "Encryption"):
 *
 * - keys mode: objects are encrypted to the configured X25519 recipients (age1...; when
 *   none are set, to the public keys of the identity file's identities); reading takes
 *   the identity file. Hosts that only write need no secret.
 * - passphrase mode: the repository holds its own X25519 identity, encrypted with the
 *   passphrase (an age scrypt file, v1/encryption-key.age); objects are encrypted to its
 *   public key, which the marker records, and reading unlocks it once per process (scrypt:
 *   about a second). Per-object scrypt would cost that second for every WAL segment.
 *
 * Secrets are read only when something is read, never for writing, and files that hold
 * one are refused when group or others may read them.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { EncryptionSettings } from "../config/load.js";
import {
  type AgeIdentity,
  type AgeRecipient,
  decryptBytes,
  encryptBytes,
  generateX25519Identity,
  parseIdentityFile,
  parseRecipient,
  publicKeyOf,
} from "../crypto/age.js";
import { AlreadyExistsError, describeSystemError, PghaError, UsageError } from "../errors.js";
import { readRepositoryKey } from "../repository/encryption-marker.js";
import { ENCRYPTION_KEY_KEY } from "../repository/keys.js";
import type { ObjectStore } from "./object-store.js";

export type EncryptionMode = "keys" | "passphrase";

/** What the object's metadata records of the recipients it was encrypted to (rekey skips equal ones). */
export function recipientsFingerprint(recipients: readonly string[]): string {
  const text = [...new Set(recipients)].sort().join("\n");
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** A file that holds a secret: refused when group or others may read it. One line errors. */
export async function readSecretFile(path: string, what: string, hint: string): Promise<string> {
  let text: string;
  try {
    const stats = await stat(path);
    if ((stats.mode & 0o077) !== 0) {
      throw new UsageError(
        `the ${what} ${path} may be read by group or others (mode ${(stats.mode & 0o777).toString(8).padStart(4, "0")})`,
        `chmod 600 ${path} (owned by the user that runs pgha: postgres for archive and restore commands)`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof PghaError) throw error;
    throw new UsageError(`cannot read the ${what} ${path}: ${describeSystemError(error)}`, hint);
  }
  return text;
}

/** The repository key opened with the passphrase but is not one X25519 identity. */
function repositoryKeyError(url: string, why: string): UsageError {
  return new UsageError(
    `the repository key ${url}/${ENCRYPTION_KEY_KEY} is not an age X25519 identity: ${why}`,
    "the passphrase opens it, so it was written with this passphrase but not by pgha; put back the copy pgha wrote (objects encrypted to that key need it)",
  );
}

const IDENTITY_HINT =
  "set encryption-identity-file (config file) or PGHA_ENCRYPTION_IDENTITY_FILE to the identity file whose public key is one of the repository's recipients: whatever reads the repository needs it (restore, verify, an incremental or differential backup, which reads its parent), archiving and full backups do not";

export class EncryptionKeys {
  private identitiesRead: Promise<AgeIdentity[]> | undefined;
  private readonly parsed = new Map<string, AgeRecipient>();

  constructor(
    readonly mode: EncryptionMode,
    private readonly settings: EncryptionSettings,
  ) {}

  /** keys mode: the recipients new objects are encrypted to. */
  async configuredRecipients(): Promise<string[]> {
    if (this.settings.recipients !== undefined) return this.settings.recipients;
    const keys = (await this.identities())
      .filter((i): i is Extract<AgeIdentity, { type: "x25519" }> => i.type === "x25519")
      .map((i) => publicKeyOf(i.secretKey));
    if (keys.length === 0) {
      throw new UsageError(
        "encryption: no recipients are set and the identity file holds no X25519 identity",
        "set encryption-recipients (config file) or PGHA_ENCRYPTION_RECIPIENTS to the age1... public keys",
      );
    }
    return keys;
  }

  /** The codec's recipients for texts (parsed once each). */
  recipientsOf(texts: readonly string[]): AgeRecipient[] {
    return texts.map((text) => {
      let recipient = this.parsed.get(text);
      if (!recipient) {
        recipient = parseRecipient(text);
        this.parsed.set(text, recipient);
      }
      return recipient;
    });
  }

  /** What reads: the identity file's identities, or the repository key the passphrase unlocks. */
  identities(control?: ObjectStore): Promise<AgeIdentity[]> {
    // A failure is not kept: a transient store error reading the repository key must not
    // fail every later read of a long-running process (prefetcher, restore).
    this.identitiesRead ??= this.readIdentities(control).catch((error: unknown) => {
      this.identitiesRead = undefined;
      throw error;
    });
    return this.identitiesRead;
  }

  private async readIdentities(control: ObjectStore | undefined): Promise<AgeIdentity[]> {
    if (this.mode === "passphrase") {
      if (!control) throw new Error("passphrase mode reads the repository key from the store");
      return this.unlockRepositoryKey(control);
    }
    const path = this.settings.identityFile;
    if (path === undefined) {
      throw new UsageError(
        "the repository is encrypted and no identity to read it is set (encryption-identity-file)",
        IDENTITY_HINT,
      );
    }
    const text = await readSecretFile(path, "identity file", IDENTITY_HINT);
    let identities: AgeIdentity[];
    try {
      identities = parseIdentityFile(text);
    } catch (error) {
      throw new UsageError(
        `the identity file ${path} is not an age identity file: ${(error as Error).message}`,
        "it holds AGE-SECRET-KEY-1... lines, as 'pgha key generate' or age-keygen write them",
      );
    }
    if (identities.length === 0) {
      throw new UsageError(`the identity file ${path} holds no identity`, IDENTITY_HINT);
    }
    return identities;
  }

  private async passphrase(): Promise<string> {
    if (this.settings.passphrase !== undefined) return this.settings.passphrase;
    const path = this.settings.passphraseFile as string;
    const text = await readSecretFile(
      path,
      "passphrase file",
      "encryption-passphrase-file names a file whose first line is the passphrase",
    );
    const line = text.split("\n")[0]?.replace(/\r$/, "") ?? "";
    if (line === "") {
      throw new UsageError(
        `the passphrase file ${path} is empty`,
        "write the passphrase on its first line (the same on every host of the repository); the rest of the file is ignored",
      );
    }
    return line;
  }

  private async unlockRepositoryKey(control: ObjectStore): Promise<AgeIdentity[]> {
    const cipher = await readRepositoryKey(control);
    if (!cipher) {
      throw new UsageError(
        `the repository ${control.url} has no key for passphrase mode (${ENCRYPTION_KEY_KEY})`,
        "passphrase mode needs the repository's own key; a repository encrypted to recipients is read with encryption-identity-file",
      );
    }
    let text: string;
    try {
      text = decryptBytes(cipher, [
        { type: "scrypt", passphrase: await this.passphrase() },
      ]).toString("utf8");
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(
        `the passphrase does not unlock ${control.url}/${ENCRYPTION_KEY_KEY}: ${(error as Error).message}`,
        "check PGHA_ENCRYPTION_PASSPHRASE or encryption-passphrase-file",
      );
    }
    try {
      return parseIdentityFile(text);
    } catch (error) {
      throw repositoryKeyError(control.url, (error as Error).message);
    }
  }

  /**
   * Passphrase mode, first write into an empty repository: makes the repository key and
   * stores it encrypted with the passphrase (only if absent). Returns its public key; a
   * racing writer's key when that one came first.
   */
  async createRepositoryKey(control: ObjectStore, now: Date): Promise<string> {
    const passphrase = await this.passphrase();
    const { secretKey, publicKey } = generateX25519Identity();
    const text = `# pgha repository key, created ${now.toISOString()}\n# public key: ${publicKey}\n${secretKey}\n`;
    const cipher = encryptBytes(Buffer.from(text), [{ type: "scrypt", passphrase }]);
    try {
      await control.put(ENCRYPTION_KEY_KEY, cipher, { ifAbsent: true });
      this.identitiesRead = Promise.resolve([{ type: "x25519", secretKey }]);
      return publicKey;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      const [identity] = await this.identities(control);
      if (identity?.type !== "x25519") {
        throw repositoryKeyError(control.url, "its identity is not X25519");
      }
      return publicKeyOf(identity.secretKey);
    }
  }
}
