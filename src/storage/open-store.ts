/**
 * Opens the ObjectStore a repository location names. The S3 implementation (and with it
 * the AWS SDK, ~150 ms to import) is loaded only for s3:// repositories.
 */
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import { FsStore } from "./fs.js";
import type { ObjectStore } from "./object-store.js";
import { defaultRetryPolicy } from "./retry.js";

export async function openStore(config: Config, log: Logger): Promise<ObjectStore> {
  const repo = config.repo;
  if (repo.kind === "fs") return new FsStore(repo.path);
  const { S3Store } = await import("./s3.js");
  const policy = defaultRetryPolicy(config.retryTimeoutMs, (error, attempt, delay) =>
    log.warn(`retrying in ${delay} ms (attempt ${attempt}): ${error.message}`),
  );
  return new S3Store(repo.bucket, repo.prefix, config.s3, policy);
}
