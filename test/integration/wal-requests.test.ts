/**
 * The requests one wal-push and one wal-fetch process make against an S3 server, counted
 * at the server (s3rver's request log): the first push of a data directory learns what it
 * needs, the next ones make only what their guarantees need (src/wal/push.ts). s3rver
 * ignores If-None-Match, so WAL goes to content-addressed keys there (FORMAT.md).
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3Server } from "../helpers/components.js";
import { runPgha } from "../helpers/pgha.js";
import { type RunningS3, startS3rver } from "../helpers/s3-server.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

const enabled = s3Server() !== null;

describe.skipIf(!enabled)("requests per wal-push / wal-fetch process on S3", () => {
  let dir: string;
  let running: RunningS3;
  let log: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-requests-"));
    log = join(dir, "requests.log");
    running = await startS3rver({ requestLog: log });
    env = {
      PGHA_REPO: `s3://${running.server.bucket}/req`,
      PGHA_S3_ENDPOINT: running.server.endpoint,
      PGHA_RETRY_TIMEOUT: "5s",
      AWS_ACCESS_KEY_ID: running.server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: running.server.secretAccessKey,
    };
    await mkdir(join(dir, "data", "pg_wal"), { recursive: true });
  });
  afterAll(async () => {
    await running?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs pgha in the data directory; returns the requests it made ("METHOD key"). */
  async function requestsOf(args: string[]): Promise<string[]> {
    await writeFile(log, "");
    const result = await runPgha(args, { env, cwd: join(dir, "data") });
    expect(result.code, result.stderr).toBe(0);
    return (await readFile(log, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        // A listing is GET of the bucket with the prefix in the query: "LIST <prefix>".
        const [method = "", url = ""] = line.split(" ");
        const parsed = new URL(url, "http://s3");
        const prefix = parsed.searchParams.get("prefix");
        if (method === "GET" && parsed.searchParams.has("list-type") && prefix !== null) {
          return `LIST ${prefix.replace(/^req\/v1\/clusters\/main\//, "")}`;
        }
        return line.replace(/ \/pgha-test\/req\/v1\/clusters\/main\//, " ").replace(/\?.*/, "");
      });
  }

  it("learns once, then a push is LIST + PUT + LIST of a content-addressed key and a fetch finds it", async () => {
    // s3rver ignores If-None-Match: a HEAD before the PUT would leave a race between two
    // pushers of one name, so WAL goes to <name>.<sha256> and the name is listed around it.
    const names = [1, 2, 3].map((n) => segmentName(1, 0, n));
    const sha = new Map<string, string>();
    for (const [i, name] of names.entries()) {
      const bytes = makeSegment(1, 0, i + 1);
      sha.set(name, createHash("sha256").update(bytes).digest("hex"));
      await writeFile(join(dir, "data", "pg_wal", name), bytes);
    }
    const wal = (name: string) => `wal/0000000100000000/${name}`;
    const version = (name: string) => `${wal(name)}.${sha.get(name)}`;
    const first = names[0] ?? "";
    expect(await requestsOf(["wal-push", `pg_wal/${first}`])).toEqual([
      "GET identity.json",
      // A new cluster: is the repository encrypted (plain-guard.ts)? Asked once, before
      // its identity.json exists to say so.
      "HEAD /pgha-test/req/v1/encryption.json",
      "HEAD identity.json",
      "PUT identity.json",
      "GET identity.json",
      "PUT probes/if-none-match",
      "PUT probes/if-none-match",
      `LIST ${wal(first)}`,
      `PUT ${version(first)}`,
      `HEAD ${version(first)}`,
      `LIST ${wal(first)}`,
    ]);
    for (const name of names.slice(1)) {
      expect(await requestsOf(["wal-push", `pg_wal/${name}`])).toEqual([
        `LIST ${wal(name)}`,
        `PUT ${version(name)}`,
        `LIST ${wal(name)}`,
      ]);
    }
    const second = names[1] ?? "";
    expect(await requestsOf(["wal-fetch", second, "pg_wal/RECOVERYXLOG"])).toEqual([
      `GET ${wal(second)}`,
      `LIST ${wal(second)}`,
      `GET ${version(second)}`,
    ]);
  });
});
