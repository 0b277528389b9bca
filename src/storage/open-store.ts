/**
 * Opens the ObjectStore a repository location names, wrapped in the retry wrapper (the
 * one place storage failures are retried). The S3 implementation (and with it the AWS
 * SDK, ~150 ms to import) is loaded only for s3:// repositories.
 */
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import { FsStore } from "./fs.js";
import type { ObjectStore } from "./object-store.js";
import { defaultRetryPolicy } from "./retry.js";
import { addRetries } from "./retrying-store.js";

export async function openStore(config: Config, log: Logger): Promise<ObjectStore> {
  const repo = config.repo;
  const policy = defaultRetryPolicy(config.retryTimeoutMs, (error, attempt, delay) =>
    log.warn(`retrying in ${delay} ms (attempt ${attempt}): ${error.message}`),
  );
  if (repo.kind === "fs") return addRetries(new FsStore(repo.path), policy);
  const { S3Store } = await import("./s3.js");
  return addRetries(new S3Store(repo.bucket, repo.prefix, config.s3), policy);
}
