/**
 * pgha prune end to end, on the local repository and the S3 test server: real backups,
 * dump sets and WAL from a test cluster, with manifests backdated through the repository
 * layer. Without --confirm nothing changes; with it, what the policy drops is gone, and
 * the backups it keeps still restore (their WAL is there).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { readBackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { readDumpManifest, writeDumpManifest } from "../../src/repository/dump-manifest.js";
import {
  backupManifestKey,
  clusterPrefix,
  dumpManifestKey,
  walNameOfKey,
} from "../../src/repository/keys.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { parseSegmentFileName, segmentNumber } from "../../src/wal/names.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { type PgCluster, runCommand, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { restoreAndStart } from "../helpers/restore.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();
const DAY = 86_400_000;
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

async function allKeys(store: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.list(clusterPrefix("main"))) keys.push(entry.key);
  return keys.sort();
}

describe.skipIf(!pg).each(repoKinds(server))("prune on a %s repository", (kind) => {
  let repo: TestRepo;
  let cluster: PgCluster;
  let env: Record<string, string>;
  let store: ObjectStore;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ({ repo, cluster: cluster, env } = await archivingCluster(kind, server));
    store = await openStore(resolveConfig({ flags: {}, env, file: undefined }), memoryLogger());

    await cluster.sql("CREATE TABLE t (n int)");
    for (const name of ["old", "mid", "new"]) {
      await cluster.sql(
        `INSERT INTO t SELECT g FROM generate_series(1, 1000) g; SELECT pg_switch_wal()`,
      );
      const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
      expect(taken.code, taken.stderr).toBe(0);
      ids[name] = taken.stdout.trim();
    }
    for (const name of ["oldDump", "newDump"]) {
      const dumped = await runPgha(["dump"], { env, asServerUser: true });
      expect(dumped.code, dumped.stderr).toBe(0);
      ids[name] = dumped.stdout.trim();
    }
    // Backdate through the repository layer: 40 and 10 days old.
    for (const [name, age] of [
      ["old", 40 * DAY],
      ["mid", 10 * DAY],
    ] as const) {
      const m = await readBackupManifest(store, "main", ids[name] ?? "");
      await store.delete(backupManifestKey("main", m.id));
      await writeBackupManifest(store, { ...m, startTime: iso(age + 60_000), stopTime: iso(age) });
    }
    const d = await readDumpManifest(store, "main", ids.oldDump ?? "");
    await store.delete(dumpManifestKey("main", d.id));
    await writeDumpManifest(store, { ...d, startTime: iso(40 * DAY), stopTime: iso(40 * DAY) });
    const user = serverUser();
    if (repo.dir && user) await runCommand("chown", ["-R", `${user.uid}:${user.gid}`, repo.dir]);
  });

  afterAll(async () => {
    await cluster?.destroy();
    await repo?.cleanup();
  });

  const policy = [
    "--keep-daily",
    "1",
    "--keep-weekly",
    "0",
    "--keep-monthly",
    "0",
    "--keep-within",
    "15d",
    "--pitr-window",
    "2d",
  ];

  it("prints the plan and deletes nothing without --confirm", async () => {
    const before = await allKeys(store);
    const planned = await runPgha(["prune", ...policy, "--json"], { env, asServerUser: true });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout);
    const decisions = (list: { id: string; keep: boolean }[]) =>
      Object.fromEntries(list.map((i) => [i.id, i.keep]));
    expect(decisions(plan.backups)).toEqual({
      [ids.old ?? ""]: false,
      [ids.mid ?? ""]: true,
      [ids.new ?? ""]: true,
    });
    expect(decisions(plan.dumps)).toEqual({
      [ids.oldDump ?? ""]: false,
      [ids.newDump ?? ""]: true,
    });
    expect(plan.wal.horizon.anchor).toBe(ids.mid);
    expect(plan.wal.delete.length).toBeGreaterThan(0);
    expect(planned.stderr).toMatch(/nothing was deleted: add --confirm/);
    expect(await allKeys(store)).toEqual(before);
  });

  it("with --confirm deletes what the policy drops; the kept backups still restore", async () => {
    const mid = await readBackupManifest(store, "main", ids.mid ?? "");
    const pruned = await runPgha(["prune", ...policy, "--confirm"], { env, asServerUser: true });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stderr).toMatch(/freed \d/);
    const after = await allKeys(store);
    expect(after.some((k) => k.includes(`/backups/${ids.old}/`))).toBe(false);
    expect(after.some((k) => k.includes(`/dumps/${ids.oldDump}/`))).toBe(false);
    expect(after.some((k) => k.includes(`/backups/${ids.mid}/`))).toBe(true);
    // WAL before the anchor backup's start is gone; from it on, it is all there.
    const first = parseSegmentFileName(mid.startWal);
    if (!first) throw new Error("bad start wal");
    const segments = after
      .map((k) => parseSegmentFileName(walNameOfKey(k).name))
      .filter((f) => f?.kind === "segment");
    expect(segments.length).toBeGreaterThan(0);
    for (const seg of segments) {
      if (seg)
        expect(
          segmentNumber(seg, mid.walSegmentSize) >= segmentNumber(first, mid.walSegmentSize),
        ).toBe(true);
    }
    const listed = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    );
    expect(listed.map((b: { id: string }) => b.id)).toEqual([ids.mid, ids.new]);

    const restored = await restoreAndStart(ids.mid ?? "", env);
    try {
      expect(Number(await restored.sql("SELECT count(*) FROM t"))).toBeGreaterThanOrEqual(2000);
    } finally {
      await restored.destroy();
    }
  });
});
