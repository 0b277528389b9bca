/**
 * --s3-ca-file against s3rver over TLS with a certificate of a private CA made at test
 * time: S3HttpStore passes the conformance suite trusting the CA file (its SDK delegate
 * too), S3Store works with it, a missing or wrong CA fails as it should, and the CLI
 * archives and restores through it without NODE_EXTRA_CA_CERTS. The file is read only
 * when a TLS connection opens.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageError, UsageError } from "../../src/errors.js";
import { S3Store } from "../../src/storage/s3.js";
import { S3HttpStore } from "../../src/storage/s3-http-store.js";
import { s3Server } from "../helpers/components.js";
import { runPgha } from "../helpers/pgha.js";
import { type RunningS3, startS3rver } from "../helpers/s3-server.js";
import { describeS3Conformance, testS3Settings } from "../helpers/s3-stores.js";
import { makeSegment, segmentName } from "../helpers/segments.js";
import { makeTestCa, type TestCa } from "../helpers/tls-ca.js";

// Runs where the other S3 tests run (s3rver is what is started here, over TLS).
const enabled = s3Server() !== null;

let dir: string;
let ca: TestCa;
let other: TestCa;
let running: RunningS3;

beforeAll(async () => {
  if (!enabled) return;
  dir = await mkdtemp(join(tmpdir(), "pgha-tls-"));
  await mkdir(join(dir, "ca"));
  await mkdir(join(dir, "other"));
  ca = await makeTestCa(join(dir, "ca"));
  other = await makeTestCa(join(dir, "other"));
  running = await startS3rver({ tls: { keyFile: ca.keyFile, certFile: ca.certFile } });
});
afterAll(async () => {
  await running?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

const settings = (caFile: string | undefined) =>
  testS3Settings(running.server.endpoint, { caFile });

if (enabled) {
  describeS3Conformance(
    "s3 S3HttpStore over TLS with --s3-ca-file",
    "tls",
    (prefix) => new S3HttpStore(running.server.bucket, prefix, settings(ca.caFile), credentials),
    // s3rver ignores If-None-Match.
    false,
  );
}

describe.skipIf(!enabled)("--s3-ca-file", () => {
  const bucket = () => running.server.bucket;

  it("S3Store (the AWS SDK) trusts it too", async () => {
    process.env.AWS_ACCESS_KEY_ID = "S3RVER";
    process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
    const store = new S3Store(bucket(), "sdk", settings(ca.caFile));
    await store.put("k", Buffer.from("sdk"));
    expect((await store.head("k"))?.size).toBe(3);
  });

  it("without it, or with another CA's, the certificate is refused with a hint", async () => {
    for (const [caFile, store] of [
      [undefined, new S3HttpStore(bucket(), "p", settings(undefined), credentials)],
      // Trusts that CA alone, then with the bundled roots: neither issued the server's.
      [other.caFile, new S3HttpStore(bucket(), "p", settings(other.caFile), credentials)],
      [other.caFile, new S3Store(bucket(), "p", settings(other.caFile))],
    ] as const) {
      const error = await store.head("k").catch((e: unknown) => e);
      expect(error, caFile).toBeInstanceOf(StorageError);
      expect((error as StorageError).transient).toBe(false);
      expect((error as StorageError).message).toMatch(/certificate is not trusted/);
      expect((error as StorageError).hint).toMatch(/--s3-ca-file/);
    }
  });

  it("an unreadable file or one without a certificate is a usage error", async () => {
    const notPem = join(dir, "not.pem");
    await writeFile(notPem, "hello\n");
    for (const caFile of [join(dir, "missing.pem"), notPem]) {
      for (const store of [
        new S3HttpStore(bucket(), "p", settings(caFile), credentials),
        new S3Store(bucket(), "p", settings(caFile)),
      ]) {
        await expect(store.head("k")).rejects.toBeInstanceOf(UsageError);
      }
    }
  });

  it("wal-push and wal-fetch work through it; it is not read without a TLS connection", async () => {
    const name = segmentName(1, 0, 1);
    const walDir = join(dir, "data", "pg_wal");
    await mkdir(walDir, { recursive: true });
    const segment = makeSegment(1, 0, 1);
    await writeFile(join(walDir, name), segment);
    const env = {
      PGHA_REPO: `s3://${bucket()}/cli`,
      PGHA_S3_ENDPOINT: running.server.endpoint,
      PGHA_S3_CA_FILE: ca.caFile,
      PGHA_RETRY_TIMEOUT: "5s",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    const cwd = join(dir, "data");
    const pushed = await runPgha(["wal-push", `pg_wal/${name}`], { env, cwd });
    expect(pushed.code, pushed.stderr).toBe(0);
    const fetched = await runPgha(["wal-fetch", name, "pg_wal/RECOVERYXLOG"], { env, cwd });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect((await readFile(join(walDir, "RECOVERYXLOG"))).equals(segment)).toBe(true);
    const untrusted = await runPgha(["wal-fetch", name, "pg_wal/RECOVERYXLOG"], {
      env: { ...env, PGHA_S3_CA_FILE: "" },
      cwd,
    });
    expect(untrusted.code).toBe(126);
    expect(untrusted.stderr).toMatch(/certificate is not trusted[\s\S]*HINT: .*--s3-ca-file/);

    // A local repository never opens a TLS connection: a missing file is never read.
    const local = await runPgha(["wal-push", `pg_wal/${name}`], {
      env: { PGHA_REPO: join(dir, "local-repo"), PGHA_S3_CA_FILE: join(dir, "missing.pem") },
      cwd,
    });
    expect(local.code, local.stderr).toBe(0);
  });
});
