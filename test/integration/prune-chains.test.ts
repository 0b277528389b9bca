/**
 * Prune and backup delete over a real chain of incremental backups (PostgreSQL 15, a local
 * repository): full F1 with incrementals I1, I2, then full F2 with incremental I3,
 * backdated through the repository layer. The policy keeps I3 (newest) and I1 (the
 * point-in-time window's base): their fulls stay for them, I2 goes, and every kept backup
 * still restores to the rows it had.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { readBackupManifest, writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { backupManifestKey } from "../../src/repository/keys.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres } from "../helpers/components.js";
import { type PgCluster, runCommand, serverUser } from "../helpers/pg-cluster.js";
import { runPgha } from "../helpers/pgha.js";
import { restoreAndStart } from "../helpers/restore.js";
import type { TestRepo } from "../helpers/test-repo.js";

const pg = havePostgres();
const DAY = 86_400_000;
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

describe.skipIf(!pg)("prune with chains of incremental backups", () => {
  let repo: TestRepo;
  let cluster: PgCluster;
  let env: Record<string, string>;
  let store: ObjectStore;
  const ids: Record<string, string> = {};
  const rows: Record<string, number> = {};

  beforeAll(async () => {
    ({ repo, cluster, env } = await archivingCluster("local", null));
    store = await openStore(resolveConfig({ flags: {}, env, file: undefined }), memoryLogger());
    await cluster.sql("CREATE TABLE t (n int)");
    let n = 0;
    for (const [name, type] of [
      ["F1", "full"],
      ["I1", "incr"],
      ["I2", "incr"],
      ["F2", "full"],
      ["I3", "incr"],
    ] as const) {
      n += 1000;
      await cluster.sql(`INSERT INTO t SELECT g FROM generate_series(1, 1000) g`);
      const taken = await runPgha(["backup", "--fast", "--type", type], {
        env,
        asServerUser: true,
      });
      expect(taken.code, taken.stderr).toBe(0);
      ids[name] = taken.stdout.trim();
      rows[name] = n;
    }
    // Backdated: F1 40 days, I1 39.5, I2 38, F2 3; I3 is now.
    for (const [name, age] of [
      ["F1", 40 * DAY],
      ["I1", 39.5 * DAY],
      ["I2", 38 * DAY],
      ["F2", 3 * DAY],
    ] as const) {
      const m = await readBackupManifest(store, "main", ids[name] ?? "");
      await store.delete(backupManifestKey("main", m.id));
      await writeBackupManifest(store, { ...m, startTime: iso(age + 60_000), stopTime: iso(age) });
    }
    const user = serverUser();
    if (repo.dir && user) await runCommand("chown", ["-R", `${user.uid}:${user.gid}`, repo.dir]);
  });

  afterAll(async () => {
    await cluster?.destroy();
    await repo?.cleanup();
  });

  const policy = [
    "--keep-last",
    "1",
    "--keep-daily",
    "0",
    "--keep-weekly",
    "0",
    "--keep-monthly",
    "0",
    "--pitr-window",
    "39d",
  ];

  it("the backups are one chain per full, as taken", async () => {
    const types = [];
    for (const name of ["F1", "I1", "I2", "F2", "I3"]) {
      const m = (await readBackupManifest(store, "main", ids[name] ?? "")) as unknown as {
        type?: string;
        chain?: string[];
      };
      types.push([name, m.type ?? "full", m.chain ?? []]);
    }
    expect(types).toEqual([
      ["F1", "full", []],
      ["I1", "incr", [ids.F1]],
      ["I2", "incr", [ids.F1, ids.I1]],
      ["F2", "full", []],
      ["I3", "incr", [ids.F2]],
    ]);
  });

  it("backup delete refuses a full that kept incrementals need, and lists them with --with-dependents", async () => {
    const refused = await runPgha(["backup", "delete", ids.F1 ?? "", "--confirm"], {
      env,
      asServerUser: true,
    });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(
      `backup ${ids.F1} is needed by 2 incremental backups (${ids.I2}, ${ids.I1})`,
    );
    const planned = await runPgha(
      ["backup", "delete", ids.F1 ?? "", "--with-dependents", "--pitr-window", "1h"],
      { env, asServerUser: true },
    );
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain(`with the 2 incremental backups that need it, deleted first`);
    expect(planned.stderr).toMatch(/nothing was deleted/);
  });

  it("prune keeps each kept incremental's chain, says why, and every kept backup restores", async () => {
    const planned = await runPgha(["prune", ...policy, "--json"], { env, asServerUser: true });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout) as {
      backups: { id: string; keep: boolean; reasons: string[] }[];
    };
    const byName = (name: string) => plan.backups.find((b) => b.id === ids[name]);
    expect(byName("I3")?.reasons).toEqual(["newest", "last 1/1"]);
    expect(byName("F2")?.reasons).toEqual([`needed by ${ids.I3} (incr)`]);
    expect(byName("I1")?.reasons).toEqual(["base of the point-in-time window"]);
    expect(byName("F1")?.reasons).toEqual([`needed by ${ids.I1} (incr)`]);
    expect(byName("I2")?.keep).toBe(false);

    const pruned = await runPgha(["prune", ...policy, "--confirm"], { env, asServerUser: true });
    expect(pruned.code, pruned.stderr).toBe(0);
    const listed = JSON.parse(
      (await runPgha(["backup", "list", "--json"], { env, asServerUser: true })).stdout,
    ) as { id: string }[];
    expect(listed.map((b) => b.id)).toEqual([ids.F1, ids.I1, ids.F2, ids.I3]);

    for (const name of ["I1", "I3"]) {
      const restored = await restoreAndStart(ids[name] ?? "", env);
      try {
        expect(Number(await restored.sql("SELECT count(*) FROM t"))).toBe(rows[name]);
      } finally {
        await restored.destroy();
      }
    }
  });
});
