/**
 * The catalog commands end to end through the CLI, on the local repository and the S3 test
 * server: real backups of a test cluster; pin, unpin and delete with their refusals;
 * cluster list, and cluster delete refused under a live lock, then deleting every object
 * of the cluster and nothing of another one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { backupPinKey, clusterPrefix, identityKey } from "../../src/repository/keys.js";
import { acquireLock } from "../../src/repository/lock.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { type PgCluster, runCommand, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();

/** Every stderr line of a --log-format json run is one JSON log object (time, level). */
function jsonLines(stderr: string): { level: string; message: string }[] {
  return stderr
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const entry = JSON.parse(line) as { time: string; level: string; message: string };
      expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT/);
      return entry;
    });
}

async function keysOf(store: ObjectStore, cluster: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.list(clusterPrefix(cluster))) keys.push(entry.key);
  return keys.sort();
}

describe.skipIf(!pg).each(repoKinds(server))("catalog commands on a %s repository", (kind) => {
  let repo: TestRepo;
  let cluster: PgCluster;
  let env: Record<string, string>;
  let store: ObjectStore;
  const ids: string[] = [];
  const pgha = (args: string[]) => runPgha(args, { env, asServerUser: true });
  const listed = async () => {
    const list = await pgha(["backup", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    return JSON.parse(list.stdout) as { id: string; pinned: boolean }[];
  };

  beforeAll(async () => {
    ({ repo, cluster, env } = await archivingCluster(kind, server));
    store = await openStore(resolveConfig({ flags: {}, env, file: undefined }), memoryLogger());
    for (let i = 0; i < 2; i++) {
      await cluster.sql("SELECT pg_switch_wal()");
      const taken = await pgha(["backup", "--fast"]);
      expect(taken.code, taken.stderr).toBe(0);
      ids.push(taken.stdout.trim());
    }
    await store.put(identityKey("other"), Buffer.from("{}"));
    const user = serverUser();
    if (repo.dir && user) await runCommand("chown", ["-R", `${user.uid}:${user.gid}`, repo.dir]);
  });

  afterAll(async () => {
    await cluster?.destroy();
    await repo?.cleanup();
  });

  it("cluster list shows each cluster with its backups and WAL", async () => {
    const list = await pgha(["cluster", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const clusters = JSON.parse(list.stdout);
    expect(clusters.map((c: { cluster: string }) => c.cluster)).toEqual(["main", "other"]);
    expect(clusters[0]).toMatchObject({ backups: 2, dumps: 0 });
    expect(clusters[0].walFiles).toBeGreaterThan(0);
    expect(clusters[0].lastArchivedWal).toMatch(/^[0-9A-F]{24}$/);
    const text = await pgha(["cluster", "list"]);
    expect(text.stdout).toMatch(/^main\s+2\s+0\s/m);
  });

  it("a pinned backup is listed as pinned and refused by backup delete; unpin lets it go", async () => {
    const [first, second] = ids as [string, string];
    const pinned = await pgha(["backup", "pin", second]);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(await store.head(backupPinKey("main", second))).toBeDefined();
    expect((await listed()).find((b) => b.id === second)?.pinned).toBe(true);
    const refused = await pgha(["backup", "delete", second, "--confirm"]);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/is pinned/);
    expect(refused.stderr).toMatch(/HINT: unpin it first/);

    // The oldest backup starts the (young) repository's window: refused without the flag.
    const window = await pgha(["backup", "delete", first, "--confirm"]);
    expect(window.code, window.stderr).toBe(3);
    expect(window.stderr).toMatch(/shortens the point-in-time window/);

    expect((await pgha(["backup", "unpin", second])).code).toBe(0);
    expect((await listed()).find((b) => b.id === second)?.pinned).toBe(false);
    const before = await keysOf(store, "main");
    const dry = await pgha(["backup", "delete", second, "--log-format", "json"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/nothing was deleted: add --confirm/);
    expect(jsonLines(dry.stderr).map((l) => l.level)).toContain("info");
    expect(await keysOf(store, "main")).toEqual(before);
    const deleted = await pgha(["backup", "delete", second, "--confirm", "--log-format", "json"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(jsonLines(deleted.stderr).some((l) => /deleted backup .*, freed /.test(l.message))).toBe(
      true,
    );
    expect((await listed()).map((b) => b.id)).toEqual([first]);
    expect((await keysOf(store, "main")).some((k) => k.includes(`/backups/${second}/`))).toBe(
      false,
    );

    const only = await pgha(["backup", "delete", first, "--confirm"]);
    expect(only.code).toBe(3);
    expect(only.stderr).toMatch(/only backup/);
    const forced = await pgha(["backup", "delete", first, "--confirm", "--allow-shorter-window"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await listed()).toEqual([]);
  });

  it("cluster delete is refused under a live lock, then deletes the cluster and only it", async () => {
    await cluster.stop(); // no wal-push brings it back
    const lock = await acquireLock(store, "main", {
      name: "dump",
      purpose: "dump",
      ttlMs: 60_000,
      now: () => new Date(),
    });
    try {
      const refused = await pgha(["cluster", "delete", "main", "--confirm"]);
      expect(refused.code, refused.stderr).toBe(3);
      expect(refused.stderr).toMatch(/cluster 'main' is locked: 'dump' by dump/);
    } finally {
      await lock.release();
    }
    const before = await keysOf(store, "main");
    expect(before.length).toBeGreaterThan(0);
    const dry = await pgha(["cluster", "delete", "main"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`cluster 'main' in .*: ${before.length} objects`));
    expect(await keysOf(store, "main")).toEqual(before);

    const deleted = await pgha(["cluster", "delete", "main", "--confirm", "--log-format", "json"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(jsonLines(deleted.stderr).some((l) => /deleted cluster 'main'/.test(l.message))).toBe(
      true,
    );
    expect(await keysOf(store, "main")).toEqual([]);
    expect(await keysOf(store, "other")).toEqual([identityKey("other")]);
    const list = await pgha(["cluster", "list", "--json"]);
    expect(JSON.parse(list.stdout).map((c: { cluster: string }) => c.cluster)).toEqual(["other"]);
    const gone = await pgha(["cluster", "delete", "main", "--confirm"]);
    expect(gone.code).toBe(13);
  });
});
