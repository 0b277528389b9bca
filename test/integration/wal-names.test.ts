/**
 * Issue 12, points 3 and 4, end to end through the pgha command:
 * - two `pgha wal-push` processes of one name with different content at the same moment,
 *   on s3rver (which ignores If-None-Match and writes in place): never both exit 0 with a
 *   version lost; a version a push reported stored stays retrievable, and a name stored
 *   with two contents is refused by wal-fetch, naming both;
 * - a garbage .history file is refused by wal-push (exit 3), and one already in the
 *   repository (put there through the store) does not stop `restore plan --latest`.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { walKey } from "../../src/repository/keys.js";
import { encodeContentMeta } from "../../src/repository/object-meta.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { archivedWalKeys, openTestStore } from "../helpers/archived-wal.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { s3Server } from "../helpers/components.js";
import { runPgha } from "../helpers/pgha.js";
import { makeSegment, segmentName } from "../helpers/segments.js";
import { makeTestRepo, repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe.skipIf(!server)("one WAL name, two contents, at the same moment on s3rver", () => {
  let repo: TestRepo;
  let dir: string;
  let env: Record<string, string>;
  let store: ObjectStore;

  beforeAll(async () => {
    repo = await makeTestRepo("s3", server);
    env = { ...repo.env, PGHA_CLUSTER: "main", PGHA_RETRY_TIMEOUT: "20s" };
    store = await openTestStore(env);
    dir = await mkdtemp(join(tmpdir(), "pgha-race-"));
    // Two servers' data directories (an old primary after failover, and the new one).
    for (const host of ["a", "b"]) await mkdir(join(dir, host, "pg_wal"), { recursive: true });
    // The cluster's identity and the pushes' caches first: the race is on the WAL name.
    const first = segmentName(1, 0, 1);
    for (const host of ["a", "b"]) {
      await writeFile(join(dir, host, "pg_wal", first), makeSegment(1, 0, 1));
    }
    const pushed = await runPgha(["wal-push", `pg_wal/${first}`], {
      env,
      cwd: join(dir, "a"),
    });
    expect(pushed.code, pushed.stderr).toBe(0);
  });
  afterAll(async () => {
    await repo?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("10 rounds: at least one push exits 5, what a push stored stays, fetch names both versions", async () => {
    let conflictsFetched = 0;
    for (let round = 0; round < 10; round++) {
      const name = segmentName(1, 0, round + 2);
      const bodies: Buffer[] = [];
      for (const host of ["a", "b"]) {
        const bytes = makeSegment(1, 0, round + 2); // random filler: the two differ
        bodies.push(bytes);
        await writeFile(join(dir, host, "pg_wal", name), bytes);
      }
      const shas = bodies.map(sha256);
      const [a, b] = await Promise.all(
        ["a", "b"].map((host) =>
          runPgha(["wal-push", `pg_wal/${name}`], { env, cwd: join(dir, host) }),
        ),
      );
      const codes = [a?.code, b?.code];
      const why = `round ${round}: exits ${codes.join(", ")}\n${a?.stderr}\n${b?.stderr}`;
      for (const code of codes) expect([0, 5], why).toContain(code);
      expect(codes, why).toContain(5);

      const keys = await archivedWalKeys(store, name);
      // Every stored object is one of the two files (metadata checked by fetch below).
      const stored: string[] = [];
      for (const key of keys) stored.push((await store.head(key))?.metadata["pgha-sha256"] ?? "");
      for (const sha of stored) expect(shas, why).toContain(sha);
      // A push that said stored: its version is there.
      for (const [i, code] of codes.entries()) {
        if (code === 0) expect(stored, why).toContain(shas[i]);
      }
      const dest = join(dir, "fetched");
      await rm(dest, { force: true });
      const fetched = await runPgha(["wal-fetch", name, dest], { env, cwd: dir });
      if (keys.length === 1) {
        expect(fetched.code, fetched.stderr).toBe(0);
        expect(shas).toContain(sha256(await readFile(dest)));
      } else {
        expect(keys).toHaveLength(2);
        // Not "not available", and no file: recovery stops rather than picking one.
        expect(fetched.code).toBe(126);
        expect(fetched.stderr).toContain(shas[0]);
        expect(fetched.stderr).toContain(shas[1]);
        await expect(readFile(dest)).rejects.toThrow();
        conflictsFetched++;
      }
    }
    // Not an assertion on timing: how often both racers wrote depends on the machine.
    console.log(`rounds in which both versions were stored: ${conflictsFetched}/10`);
  }, 240_000);
});

describe.each(repoKinds(server))("history files in a %s repository", (kind) => {
  let repo: TestRepo;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    repo = await makeTestRepo(kind, server);
    env = { ...repo.env, PGHA_CLUSTER: "main", PGHA_RETRY_TIMEOUT: "20s" };
    dir = await mkdtemp(join(tmpdir(), "pgha-history-"));
    await mkdir(join(dir, "pg_wal"));
  });
  afterAll(async () => {
    await repo?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("wal-push of a garbage .history exits 3 with one line and a hint", async () => {
    await writeFile(join(dir, "pg_wal", "00000002.history"), "garbage, not a history file\n");
    const pushed = await runPgha(["wal-push", "pg_wal/00000002.history"], { env, cwd: dir });
    expect(pushed.code).toBe(3);
    expect(pushed.stderr).toMatch(
      /00000002\.history is not a valid timeline history file: line 1 does not start with a timeline number/,
    );
    expect(pushed.stderr).toContain("HINT");
    expect(pushed.stderr).not.toMatch(/\n\s+at /); // no stack
  });

  it("restore plan --latest works with a bad history file already in the repository, and names it", async () => {
    // Segments 1-4 on timeline 1 and a backup of segment 2, as pgha stores them.
    for (let n = 1; n <= 4; n++) {
      const name = segmentName(1, 0, n);
      await writeFile(join(dir, "pg_wal", name), makeSegment(1, 0, n));
      const pushed = await runPgha(["wal-push", `pg_wal/${name}`], { env, cwd: dir });
      expect(pushed.code, pushed.stderr).toBe(0);
    }
    const store = await openTestStore(env);
    await writeBackupManifest(
      store,
      makeBackupManifest({
        id: "20261121T100000Z",
        timeline: 1,
        walSegmentSize: 1 << 20,
        startWal: segmentName(1, 0, 2),
        stopWal: segmentName(1, 0, 2),
        startLsn: "0/200028",
        stopLsn: "0/200100",
        startTime: "2026-11-21T10:00:00Z",
        stopTime: "2026-11-21T10:00:01Z",
      }),
    );
    // The garbage an older pgha archived, put there directly.
    const garbage = Buffer.from("garbage, not a history file\n");
    const history = parseWalFileName("00000002.history");
    if (!history) throw new Error("history name");
    await store.put(walKey("main", history), garbage, {
      metadata: encodeContentMeta({
        sha256: sha256(garbage),
        rawSize: garbage.length,
        compression: "none",
      }),
    });
    const planned = await runPgha(["restore", "plan", "--latest", "--json"], { env, cwd: dir });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout) as {
      targetTimeline: number;
      notes: string[];
      wal: { last: string };
      settings: Record<string, string>;
    };
    expect(plan.targetTimeline).toBe(1);
    // Not 'latest': PostgreSQL would read the bad file and stop.
    expect(plan.settings.recovery_target_timeline).toBe("1");
    expect(plan.wal.last).toBe(segmentName(1, 0, 4));
    expect(plan.notes.join("\n")).toMatch(/history file not followed: 00000002\.history/);
  });
});
