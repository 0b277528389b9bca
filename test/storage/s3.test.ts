import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { defaultRetryPolicy } from "../../src/storage/retry.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { S3Store } from "../../src/storage/s3.js";
import type { S3Settings } from "../../src/storage/s3-settings.js";
import { s3Server } from "../helpers/components.js";
import { freePort } from "../helpers/pg-cluster.js";
import { describeConformance } from "./conformance.js";

const server = s3Server();

function settings(endpoint: string): S3Settings {
  return {
    endpoint,
    region: server?.region ?? "us-east-1",
    forcePathStyle: true,
    checksums: "when_required",
    storageClass: undefined,
    sse: undefined,
    sseKmsKeyId: undefined,
    partSize: 5 * 1024 * 1024,
  };
}

if (server) {
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  describeConformance(
    `s3 (${server.kind})`,
    async () => {
      const prefix = `conformance-${randomBytes(4).toString("hex")}`;
      const store = addRetries(
        new S3Store(server.bucket, prefix, settings(server.endpoint)),
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
      atomicIfAbsent: server.conditionalWrites,
      largeBody: 12 * 1024 * 1024,
    },
  );
}

describe.skipIf(!server)("S3Store failures", () => {
  it("retries an unreachable endpoint within the time budget, then fails as transient storage", async () => {
    const port = await freePort();
    const store = addRetries(
      new S3Store("bucket", "p", settings(`http://127.0.0.1:${port}`)),
      defaultRetryPolicy(1500),
    );
    const started = Date.now();
    const error = await store.head("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(true);
    expect((error as StorageError).message).toMatch(/attempt/);
    expect(Date.now() - started).toBeLessThan(6000);
  });

  it("names a missing bucket as a non-transient error with a hint", async () => {
    if (!server) return;
    const store = addRetries(
      new S3Store("no-such-bucket-pgha", "", settings(server.endpoint)),
      defaultRetryPolicy(2000),
    );
    const error = await store.put("k", Buffer.from("x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(false);
    expect((error as StorageError).hint).toMatch(/bucket/);
  });
});
