/**
 * Opens the ObjectStore a repository location names, wrapped in the retry wrapper (the
 * one place storage failures are retried). Each implementation is loaded only when used:
 * a local repository loads no S3 code. An S3 repository gets S3HttpStore when the
 * credentials are static keys (environment or shared files), which loads the AWS SDK
 * (~70 ms to import) only for what it hands over (multipart uploads, listings); else the
 * SDK-based S3Store with the SDK's whole credential chain.
 *
 * Between the store and the retry wrapper sits the encryption layer: with encryption
 * settings the encrypting wrapper (encrypting-store.ts, which loads the age codec only
 * then), without them the plain guard (plain-guard.ts), which keeps this pgha out of an
 * encrypted repository.
 */
import { type Config, encryptionModeOf } from "../config/load.js";
import type { Logger } from "../log.js";
import type { ObjectStore } from "./object-store.js";
import { PlainGuardStore } from "./plain-guard.js";
import { defaultRetryPolicy, type RetryPolicy } from "./retry.js";
import { addRetries } from "./retrying-store.js";

export async function openStore(config: Config, log: Logger): Promise<ObjectStore> {
  const policy = retryPolicy(config, log);
  const raw = await openBareStore(config, log);
  const control = addRetries(raw, policy);
  const mode = encryptionModeOf(config.encryption);
  if (mode === undefined) return addRetries(new PlainGuardStore(raw, control), policy);
  const [{ EncryptingStore }, { EncryptionKeys }] = await Promise.all([
    import("./encrypting-store.js"),
    import("./encryption-keys.js"),
  ]);
  const keys = new EncryptionKeys(mode, config.encryption);
  return addRetries(new EncryptingStore(raw, control, keys, log), policy);
}

/**
 * The store without the encryption layer, with retries: what `pgha repo rekey` reads and
 * rewrites (age headers as they are stored).
 */
export async function openRawStore(config: Config, log: Logger): Promise<ObjectStore> {
  return addRetries(await openBareStore(config, log), retryPolicy(config, log));
}

function retryPolicy(config: Config, log: Logger): RetryPolicy {
  return defaultRetryPolicy(config.retryTimeoutMs, (error, attempt, delay) =>
    log.warn(`retrying in ${delay} ms (attempt ${attempt}): ${error.message}`),
  );
}

async function openBareStore(config: Config, log: Logger): Promise<ObjectStore> {
  const repo = config.repo;
  if (repo.kind === "fs") {
    const { FsStore, checkLocalRepository } = await import("./fs.js");
    await checkLocalRepository(repo.path);
    return new FsStore(repo.path);
  }
  const { S3HttpStore } = await import("./s3-http-store.js");
  const { findStaticCredentials } = await import("./aws-credentials.js");
  const unsupported = S3HttpStore.unsupported(repo.bucket, config.s3);
  const found = unsupported
    ? { sdk: unsupported }
    : findStaticCredentials(process.env, { customEndpoint: config.s3.endpoint !== undefined });
  if ("credentials" in found) {
    log.debug(`S3 requests signed by pgha with the keys of the ${found.from}`);
    return new S3HttpStore(repo.bucket, repo.prefix, config.s3, found.credentials);
  }
  log.debug(`S3 requests made by the AWS SDK: ${found.sdk}`);
  const { S3Store } = await import("./s3.js");
  return new S3Store(repo.bucket, repo.prefix, config.s3);
}
