/**
 * A cluster on timeline 2 whose repository does not hold 00000002.history (a new
 * repository for an existing cluster: README's "give encrypted backups a new repository",
 * a new prefix). PostgreSQL archived the history file once, at the promotion, elsewhere;
 * a backup into the new repository must push it from pg_wal, or the planner refuses
 * every backup there ("timeline 2 has no history file").
 */
import { access, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres } from "../helpers/components.js";
import { runPgha } from "../helpers/pgha.js";

const pg = havePostgres();
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe.skipIf(!pg)("a backup on a later timeline into a repository without its history", () => {
  let setup: ArchivingSetup;

  beforeAll(async () => {
    setup = await archivingCluster("local", null);
    const { cluster } = setup;
    // A promotion: timeline 2, 00000002.history in pg_wal (and archived).
    await cluster.stop();
    await writeFile(join(cluster.dataDir, "standby.signal"), "");
    await cluster.start();
    await cluster.sql("SELECT pg_promote()");
    await cluster.waitPromoted();
    await cluster.sql("CREATE TABLE t AS SELECT generate_series(1, 100) a");
  });

  afterAll(async () => {
    await setup?.destroy();
  });

  it("pushes the timeline's history file from pg_wal, so the backup is restorable", async () => {
    const { env, cluster } = setup;
    const repo = env.PGHA_REPO ?? "";
    const history = join(repo, "v1", "clusters", "main", "wal", "history", "00000002.history");
    // Wait for the archiver's push, then take it away: the repository never had it.
    for (let i = 0; i < 300 && !(await exists(history)); i++)
      await new Promise((r) => setTimeout(r, 100));
    await rm(history);
    expect(await cluster.sql("SELECT timeline_id FROM pg_control_checkpoint()")).toBe("2");

    const taken = await runPgha(["backup", "--fast"], {
      env: { ...env, PGHA_LOG_LEVEL: "info" },
      asServerUser: true,
    });
    expect(taken.code, taken.stderr).toBe(0);
    const list = await runPgha(["backup", "list", "--json"], { env });
    expect(list.code, list.stderr).toBe(0);
    const backups = JSON.parse(list.stdout) as { restorable: boolean; timeline: number }[];
    expect(backups.at(-1)).toMatchObject({ restorable: true, timeline: 2 });
    const plan = await runPgha(["restore", "plan"], { env });
    expect(plan.code, plan.stderr).toBe(0);
    expect(taken.stderr).toContain("pushed 00000002.history");
  });
});
