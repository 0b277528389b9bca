/**
 * Opens the ObjectStore a repository location names, wrapped in the retry wrapper (the
 * one place storage failures are retried). Each implementation is loaded only when used:
 * a local repository loads no S3 code. An S3 repository gets S3HttpStore when the
 * credentials are static keys (environment or shared files), which loads the AWS SDK
 * (~70 ms to import) only for what it hands over (multipart uploads, listings); else the
 * SDK-based S3Store with the SDK's whole credential chain.
 */
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import type { ObjectStore } from "./object-store.js";
import { defaultRetryPolicy } from "./retry.js";
import { addRetries } from "./retrying-store.js";

export async function openStore(config: Config, log: Logger): Promise<ObjectStore> {
  const repo = config.repo;
  const policy = defaultRetryPolicy(config.retryTimeoutMs, (error, attempt, delay) =>
    log.warn(`retrying in ${delay} ms (attempt ${attempt}): ${error.message}`),
  );
  if (repo.kind === "fs") {
    const { FsStore, checkLocalRepository } = await import("./fs.js");
    await checkLocalRepository(repo.path);
    return addRetries(new FsStore(repo.path), policy);
  }
  const { S3HttpStore } = await import("./s3-http-store.js");
  const { findStaticCredentials } = await import("./aws-credentials.js");
  const unsupported = S3HttpStore.unsupported(repo.bucket, config.s3);
  const found = unsupported
    ? { sdk: unsupported }
    : findStaticCredentials(process.env, { customEndpoint: config.s3.endpoint !== undefined });
  if ("credentials" in found) {
    log.debug(`S3 requests signed by pgha with the keys of the ${found.from}`);
    return addRetries(
      new S3HttpStore(repo.bucket, repo.prefix, config.s3, found.credentials),
      policy,
    );
  }
  log.debug(`S3 requests made by the AWS SDK: ${found.sdk}`);
  const { S3Store } = await import("./s3.js");
  return addRetries(new S3Store(repo.bucket, repo.prefix, config.s3), policy);
}
