/** pgha's S3 stores against a test server: their settings, and the conformance suite for them. */
import { randomBytes } from "node:crypto";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { defaultRetryPolicy } from "../../src/storage/retry.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import type { S3Settings } from "../../src/storage/s3-settings.js";
import { describeConformance } from "./store-conformance.js";

/** Path-style, checksums only where required (s3rver), 5 MiB parts; `over` wins. */
export function testS3Settings(endpoint: string, over: Partial<S3Settings> = {}): S3Settings {
  return {
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    checksums: "when_required",
    storageClass: undefined,
    sse: undefined,
    sseKmsKeyId: undefined,
    partSize: 5 * 1024 * 1024,
    caFile: undefined,
    ...over,
  };
}

/**
 * The conformance suite for the store `make` opens at a fresh prefix (`prefix`-random),
 * with pgha's retries; everything under it is deleted afterwards. `conditionalWrites`:
 * whether the server honours If-None-Match.
 */
export function describeS3Conformance(
  name: string,
  prefix: string,
  make: (prefix: string) => ObjectStore,
  conditionalWrites: boolean,
): void {
  describeConformance(
    name,
    async () => {
      const store = addRetries(
        make(`${prefix}-${randomBytes(4).toString("hex")}`),
        defaultRetryPolicy(20_000),
      );
      return {
        store,
        cleanup: async () => {
          for await (const entry of store.list("")) await store.delete(entry.key);
        },
      };
    },
    {
      capabilities: {
        atomicIfAbsent: "unknown",
        atomicReplace: "unknown",
        durableWhenVisible: true,
      },
      atomicIfAbsent: conditionalWrites,
      largeBody: 12 * 1024 * 1024,
    },
  );
}
