/**
 * A repository for an integration test: a local directory the server user owns, or a
 * fresh prefix on the S3 test server. corrupt() flips a byte of a stored object's body
 * (keeping its metadata), as disk or bit rot would.
 */
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { serverOwnedTempDir } from "./pg-cluster.js";
import { testS3Client } from "./s3-client.js";
import { type S3TestServer, s3Env } from "./s3-server.js";

export type RepoKind = "local" | "s3";

export interface TestRepo {
  kind: RepoKind;
  /** PGHA_REPO and, for S3, endpoint and credentials. */
  env: Record<string, string>;
  /** The local directory, for a local repository. */
  dir: string | undefined;
  corrupt(key: string): Promise<void>;
  cleanup(): Promise<void>;
}

export function repoKinds(server: S3TestServer | null): RepoKind[] {
  return server ? ["local", "s3"] : ["local"];
}

/** Flips the middle byte of the body, from `from` (the length of a header) on. */
function flip(bytes: Buffer, from = 0): Buffer {
  const at = from + Math.floor((bytes.length - from) / 2);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  return bytes;
}

export async function makeTestRepo(kind: RepoKind, server: S3TestServer | null): Promise<TestRepo> {
  if (kind === "local") {
    const dir = await serverOwnedTempDir("pgha-repo-");
    return {
      kind,
      env: { PGHA_REPO: dir },
      dir,
      corrupt: async (key) => {
        // A local object starts with its header line (src/storage/fs.ts): keep it intact.
        const path = join(dir, key);
        const bytes = await readFile(path);
        await writeFile(path, flip(bytes, bytes.indexOf(10) + 1));
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
  if (!server) throw new Error("no S3 test server");
  const prefix = `test-${randomBytes(4).toString("hex")}`;
  // Tests in this process open the store too: the SDK reads credentials from the env.
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  const client = testS3Client(server);
  return {
    kind,
    env: s3Env(server, prefix),
    dir: undefined,
    corrupt: async (key) => {
      const Key = `${prefix}/${key}`;
      const got = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key }));
      const body = Buffer.from(
        await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      await client.send(
        new PutObjectCommand({
          Bucket: server.bucket,
          Key,
          Body: flip(body),
          Metadata: got.Metadata,
        }),
      );
    },
    cleanup: async () => undefined,
  };
}
