/**
 * The S3 server the integration tests run against, in this order:
 *   1. an external endpoint: PGHA_TEST_S3_ENDPOINT (+ PGHA_TEST_S3_BUCKET, AWS_* credentials);
 *   2. MinIO through testcontainers, when a container engine answers;
 *   3. s3rver on 127.0.0.1 in a child process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export interface S3TestServer {
  kind: "external" | "minio" | "s3rver";
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Whether the server honours If-None-Match: * (s3rver ignores it). */
  conditionalWrites: boolean;
}

export interface RunningS3 {
  server: S3TestServer;
  /** s3rver only: the directory it keeps its buckets in (objects are files under it). */
  directory?: string;
  stop(): Promise<void>;
}

/** `requestLog`: where s3rver logs its requests (MinIO and an external server do not). */
export async function startS3Server(
  log: (line: string) => void,
  options: { requestLog?: string } = {},
): Promise<RunningS3> {
  const external = process.env.PGHA_TEST_S3_ENDPOINT;
  if (external) {
    return {
      server: {
        kind: "external",
        endpoint: external,
        bucket: process.env.PGHA_TEST_S3_BUCKET ?? "pgha-test",
        region: process.env.AWS_REGION ?? "us-east-1",
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "",
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "",
        conditionalWrites: process.env.PGHA_TEST_S3_CONDITIONAL_WRITES !== "false",
      },
      stop: async () => undefined,
    };
  }
  const minio = await tryMinio(log);
  if (minio) return minio;
  return startS3rver(options);
}

async function tryMinio(log: (line: string) => void): Promise<RunningS3 | undefined> {
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await withTimeout(getContainerRuntimeClient(), 15_000);
  } catch (error) {
    log(`no container engine (${String((error as Error).message).split("\n")[0]}); using s3rver`);
    return undefined;
  }
  const { MinioContainer } = await import("@testcontainers/minio");
  const container = await new MinioContainer("minio/minio:RELEASE.2025-04-22T22-12-26Z").start();
  const endpoint = container.getConnectionUrl();
  const server: S3TestServer = {
    kind: "minio",
    endpoint,
    bucket: "pgha-test",
    region: "us-east-1",
    accessKeyId: container.getUsername(),
    secretAccessKey: container.getPassword(),
    conditionalWrites: true,
  };
  const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: server.bucket }));
  return { server, stop: async () => void (await container.stop()) };
}

/**
 * s3rver on 127.0.0.1 in a child process (it checks every SigV4 signature, see
 * s3rver-main.mjs). With `tls` (PEM files) it speaks https only, and clients must trust
 * the certificate themselves; with `requestLog` it appends "METHOD URL" per request there.
 */
export async function startS3rver(
  options: { tls?: { keyFile: string; certFile: string }; requestLog?: string } = {},
): Promise<RunningS3> {
  const directory = await mkdtemp(join(tmpdir(), "pgha-s3rver-"));
  const bucket = "pgha-test";
  const tlsArgs = options.tls ? [options.tls.keyFile, options.tls.certFile] : [];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      join(import.meta.dirname, "s3rver-main.mjs"),
      directory,
      bucket,
      ...tlsArgs,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: options.requestLog
        ? { ...process.env, S3RVER_REQUEST_LOG: options.requestLog }
        : process.env,
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once("line", (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`s3rver exited with ${code} before listening`)));
    setTimeout(() => reject(new Error("s3rver did not start within 20s")), 20_000).unref();
  });
  return {
    server: {
      kind: "s3rver",
      endpoint: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
      bucket,
      region: "us-east-1",
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      conditionalWrites: false,
    },
    directory,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await rm(directory, { recursive: true, force: true });
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Environment that points pgha (and the AWS SDK chain) at the test server. */
export function s3Env(server: S3TestServer, prefix: string): Record<string, string> {
  return {
    PGHA_REPO: `s3://${server.bucket}/${prefix}`,
    PGHA_S3_ENDPOINT: server.endpoint,
    PGHA_S3_REGION: server.region,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
  };
}
