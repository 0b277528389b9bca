/** S3HttpStore addresses a bucket where the AWS SDK would send the same request. */
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { s3Address } from "../../src/storage/s3-http-store.js";
import type { S3Settings } from "../../src/storage/s3-settings.js";

function settings(over: Partial<S3Settings>): S3Settings {
  return {
    endpoint: undefined,
    region: "us-east-1",
    forcePathStyle: false,
    checksums: "when_supported",
    storageClass: undefined,
    sse: undefined,
    sseKmsKeyId: undefined,
    partSize: 16 << 20,
    caFile: undefined,
    ...over,
  };
}

/** The URL the SDK sends HeadObject to, captured instead of sent. */
async function sdkUrl(bucket: string, s: S3Settings): Promise<string> {
  let url = "";
  const client = new S3Client({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    credentials: { accessKeyId: "AKID", secretAccessKey: "secret" },
    requestHandler: {
      handle: async (request: {
        protocol: string;
        hostname: string;
        port?: number;
        path: string;
      }) => {
        url = `${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ""}${request.path}`;
        throw new Error("captured");
      },
    } as never,
  });
  await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "a/key" })).catch(() => undefined);
  return url;
}

describe("s3Address", () => {
  it.each([
    ["pgha-archive", {}],
    ["pgha-archive", { region: "eu-west-3" }],
    ["pgha-archive", { region: "cn-north-1" }],
    ["pgha-archive", { region: "us-gov-west-1" }],
    ["pgha.archive", {}],
    ["pgha-archive", { forcePathStyle: true }],
    ["pgha-archive", { endpoint: "http://127.0.0.1:9000", forcePathStyle: true }],
    ["pgha-archive", { endpoint: "http://127.0.0.1:9000" }],
    ["pgha-archive", { endpoint: "https://minio.internal:9000" }],
    ["pgha.archive", { endpoint: "https://minio.internal:9000" }],
    ["pgha.archive", { endpoint: "http://minio.internal" }],
    ["pgha-archive", { endpoint: "https://gw.example.com/s3/", forcePathStyle: true }],
  ] as const)("%s with %o", async (bucket, over) => {
    const s = settings(over);
    const a = s3Address(bucket, s);
    const ours = `${a.secure ? "https:" : "http:"}//${a.hostname}${a.port ? `:${a.port}` : ""}${a.basePath}/a/key`;
    expect(ours).toBe(await sdkUrl(bucket, s));
    expect(a.authority).toBe(`${a.hostname}${a.port ? `:${a.port}` : ""}`);
  });
});
