/** pgha repo rekey and pgha key generate: the keys of an encrypted repository. */
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { OptionsOf } from "../../config/flags.js";
import { encryptionModeOf } from "../../config/load.js";
import { generateX25519Identity } from "../../crypto/age.js";
import { describeSystemError, LocalIoError, UsageError } from "../../errors.js";
import { applyRekey, planRekey } from "../../repository/rekey.js";
import { EncryptionKeys, recipientsFingerprint } from "../../storage/encryption-keys.js";
import { openRawStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { reportNote } from "../report.js";
import { formatBytes } from "../table.js";

export async function rekeyCommand(opts: OptionsOf<"repo rekey">): Promise<number> {
  const { config, log } = loadContext(opts);
  const mode = encryptionModeOf(config.encryption);
  if (mode !== "keys") {
    throw new UsageError(
      mode === undefined
        ? "repo rekey needs the encryption settings: the new recipients and an identity that opens the objects now"
        : "repo rekey rewraps objects to recipients; in passphrase mode every object is encrypted to the repository's own key, which does not change",
      "set encryption-recipients (the new set) and encryption-identity-file (holding the old identity, and the new one for later reads)",
    );
  }
  const keys = new EncryptionKeys("keys", config.encryption);
  const recipients = await keys.configuredRecipients();
  const store = await openRawStore(config, log);
  const plan = await planRekey(store, recipients, recipientsFingerprint(recipients));
  const bytes = plan.rewrap.reduce((sum, item) => sum + item.size, 0);
  process.stdout.write(
    `rekey of ${store.url} to ${recipients.length} recipient${recipients.length === 1 ? "" : "s"} (${recipients.join(", ")}):\n` +
      `  rewrap ${plan.rewrap.length} objects (${formatBytes(bytes)}, each rewritten whole)\n` +
      `  already encrypted to these recipients: ${plan.current}\n` +
      `  plain (marker, identity, locks, probes): ${plan.plain}\n`,
  );
  if (!opts.confirm) {
    reportNote("nothing was changed: add --confirm to rewrap the objects");
    return 0;
  }
  // Fails on its own line before anything is written when the identity is missing.
  const identities = await keys.identities();
  let done = 0;
  const rewrapped = await applyRekey(
    {
      store,
      identities,
      recipients: keys.recipientsOf(recipients),
      jobs: config.parallel,
      now: () => new Date(),
      onObject: (key, outcome) => {
        done++;
        log.debug(`${outcome}: ${key}`);
        if (done % 100 === 0) log.info(`rekey: ${done} of ${plan.rewrap.length} objects`);
      },
    },
    plan,
  );
  reportNote(
    `rewrapped ${rewrapped} objects of ${store.url}; v1/encryption.json lists the new recipients`,
  );
  return 0;
}

export async function keyGenerateCommand(file: string): Promise<number> {
  const { secretKey, publicKey } = generateX25519Identity();
  const text = `# created: ${new Date().toISOString()} by pgha key generate\n# public key: ${publicKey}\n${secretKey}\n`;
  try {
    await writeFile(file, text, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new UsageError(
        `${file} exists already: pgha key generate never replaces an identity file`,
        "choose another file name (an identity that is replaced cannot read what was encrypted to it)",
      );
    }
    throw new LocalIoError(`cannot write ${file}: ${describeSystemError(error)}`, {
      hint: `the directory ${dirname(resolve(file))} must exist and be writable by this user (run as the user that reads the file, or give another path)`,
      cause: error,
    });
  }
  process.stdout.write(`${publicKey}\n`);
  reportNote(
    `identity written to ${file} (mode 0600); its public key (above) is the recipient for encryption-recipients. Keep a copy of the file away from the repository: without it nothing encrypted to it can be read`,
  );
  return 0;
}
