/**
 * Asynchronous archiving and restore prefetch end to end, on a real PostgreSQL 15 with
 * archive_command = pgha wal-push (--archive-async) through the shell launcher:
 * - every segment PostgreSQL marks .done is in the repository at that moment (nothing is
 *   acknowledged before it is stored), under pgbench;
 * - a kill -9 of the archiver loses nothing: the next wal-push starts another;
 * - a restore recovers through the prefetcher, which delivers segments by rename;
 * - a corrupt object the prefetcher meets still stops recovery (exit 126), it does not end it.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { archivedWalKeys } from "../helpers/archived-wal.js";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { pghaCommandLine, runPgha } from "../helpers/pgha.js";
import { repoKinds } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();
const SEGMENT = /^[0-9A-F]{24}$/;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!pg).each(repoKinds(server))(
  "asynchronous archiving into a %s repository",
  (kind) => {
    let setup: ArchivingSetup;
    let store: ObjectStore;
    const stored = (name: string) => {
      const file = parseWalFileName(name);
      if (!file) throw new Error(name);
      return archivedWalKeys(store, file.name).then((keys) => keys.length > 0);
    };
    const spool = () => join(setup.cluster.dataDir, "pg_wal", ".pgha", "archive");
    const archiverPid = async () =>
      (JSON.parse(await readFile(join(spool(), "lock"), "utf8")) as { pid: number }).pid;

    beforeAll(async () => {
      setup = await archivingCluster(kind, server, {
        env: { PGHA_ARCHIVE_ASYNC: "true" },
        conf: ["wal_keep_size = '2GB'", "max_wal_size = '2GB'"],
      });
      store = await openStore(
        resolveConfig({ flags: {}, env: setup.env, file: undefined }),
        memoryLogger(),
      );
    });
    afterAll(async () => {
      await setup?.destroy();
    });

    /** Watches archive_status while `work` runs: every .done segment must be in the repository. */
    async function acknowledgedOnlyWhenStored(work: () => Promise<void>): Promise<string[]> {
      const status = join(setup.cluster.dataDir, "pg_wal", "archive_status");
      const checked = new Set<string>();
      const early: string[] = [];
      let running = true;
      const watcher = (async () => {
        while (running) {
          for (const entry of await readdir(status).catch(() => [] as string[])) {
            const name = entry.replace(/\.done$/, "");
            if (!entry.endsWith(".done") || !SEGMENT.test(name) || checked.has(name)) continue;
            checked.add(name);
            if (!(await stored(name))) early.push(name);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        await work();
      } finally {
        running = false;
        await watcher;
      }
      expect(early, "segments PostgreSQL was told were archived before they were stored").toEqual(
        [],
      );
      return [...checked];
    }

    async function switchAndWait(): Promise<string> {
      const last = await setup.cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
      await waitFor(`${last} archived`, async () => {
        const archived = await setup.cluster.sql(
          "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        );
        return archived >= last;
      });
      return last;
    }

    it("archives every segment of a pgbench run, acknowledging each only once it is stored", async () => {
      const checked = await acknowledgedOnlyWhenStored(async () => {
        await setup.cluster.pgbench(["-i", "-s", "10", "-q"]);
        await setup.cluster.pgbench(["-T", "3", "-c", "2"]);
        await switchAndWait();
      });
      expect(checked.length).toBeGreaterThan(5);
      const segments = (await readdir(join(setup.cluster.dataDir, "pg_wal"))).filter((n) =>
        SEGMENT.test(n),
      );
      const last = await setup.cluster.sql("SELECT last_archived_wal FROM pg_stat_archiver");
      for (const name of segments.filter((n) => n <= last))
        expect(await stored(name), name).toBe(true);
      const status = JSON.parse(await readFile(join(spool(), "status.json"), "utf8"));
      expect(status.stored).toBeGreaterThan(0);
      expect(status.lastError).toBeNull();
      // pgha status reads the same file, through the server's data_directory.
      const shown = await runPgha(["status", "--json"], { env: setup.env, asServerUser: true });
      expect(shown.code, shown.stderr).toBe(0);
      const spoolStatus = JSON.parse(shown.stdout).server.spool;
      expect(spoolStatus.stored).toBeGreaterThan(0);
      expect(spoolStatus.lastError).toBeNull();
    });

    it("loses nothing when the archiver is killed: the next wal-push starts another", async () => {
      const before = await archiverPid();
      process.kill(before, "SIGKILL");
      await acknowledgedOnlyWhenStored(async () => {
        await setup.cluster.pgbench(["-T", "2", "-c", "2"]);
        await switchAndWait();
      });
      expect(await archiverPid()).not.toBe(before);
      const failures = await setup.cluster.sql("SELECT failed_count FROM pg_stat_archiver");
      expect(Number(failures)).toBe(0);
    });

    it("leaves the spool to the server user when root runs wal-push or wal-fetch by hand", async () => {
      const user = serverUser();
      const dataDir = setup.cluster.dataDir;
      const done = await switchAndWait();
      // As root, in the data directory: an operator checking that archiving works.
      const pushed = await runPgha(["wal-push", `pg_wal/${done}`], {
        cwd: dataDir,
        env: setup.env,
      });
      expect(pushed.code, pushed.stderr).toBe(0);
      // A copy in recovery (standby.signal), as root too: it fetches, and starts no prefetcher.
      const copy = await serverOwnedTempDir("pgha-by-hand-");
      try {
        await mkdir(join(copy, "pg_wal"));
        if (user) await chown(join(copy, "pg_wal"), user.uid, user.gid);
        await writeFile(join(copy, "standby.signal"), "");
        const fetched = await runPgha(["wal-fetch", done, "pg_wal/RECOVERYXLOG"], {
          cwd: copy,
          env: setup.env,
        });
        expect(fetched.code, fetched.stderr).toBe(0);
        expect(await readdir(join(copy, "pg_wal"))).toEqual(["RECOVERYXLOG"]);
      } finally {
        await rm(copy, { recursive: true, force: true });
      }
      if (user) {
        const strangers: string[] = [];
        const walk = async (dir: string): Promise<void> => {
          for (const entry of await readdir(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            if ((await stat(path)).uid !== user.uid) strangers.push(path);
            if (entry.isDirectory()) await walk(path);
          }
        };
        await walk(join(dataDir, "pg_wal", ".pgha"));
        expect(strangers, "spool files the server user may not be able to use").toEqual([]);
      }
      // archive_command goes on working.
      await acknowledgedOnlyWhenStored(async () => {
        await setup.cluster.pgbench(["-T", "1", "-c", "1"]);
        await switchAndWait();
      });
    });

    it("restores through the prefetcher; a corrupt object stops recovery instead of ending it", async () => {
      const taken = await runPgha(["backup", "--fast"], { env: setup.env, asServerUser: true });
      expect(taken.code, taken.stderr).toBe(0);
      await setup.cluster.sql(
        "CREATE TABLE after_backup AS SELECT g FROM generate_series(1, 200000) g",
      );
      await setup.cluster.pgbench(["-T", "2", "-c", "2"]);
      const last = await switchAndWait();
      const rows = await setup.cluster.sql("SELECT count(*) FROM after_backup");

      const restore = async (label: string) => {
        const parent = await serverOwnedTempDir(`pgha-${label}-`);
        const dataDir = join(parent, "data");
        const fetched = await runPgha(["backup", "fetch", "latest", dataDir], {
          env: setup.env,
          asServerUser: true,
        });
        expect(fetched.code, fetched.stderr).toBe(0);
        const copy = await PgCluster.adopt(dataDir, {
          env: setup.env,
          conf: [
            "archive_mode = off",
            `restore_command = '${pghaCommandLine("wal-fetch %f %p").replace(/'/g, "''")}'`,
            "recovery_target_action = 'promote'",
          ],
        });
        copy.removeAlso.push(parent);
        await writeFile(join(dataDir, "recovery.signal"), "");
        return copy;
      };

      const good = await restore("prefetch");
      try {
        await good.start();
        await good.waitPromoted();
        expect(await good.sql("SELECT count(*) FROM after_backup")).toBe(rows);
        const status = JSON.parse(
          await readFile(join(good.dataDir, "pg_wal", ".pgha", "prefetch", "status.json"), "utf8"),
        );
        expect(status.delivered, "segments delivered by the prefetcher").toBeGreaterThan(0);
        // With its server stopped, the prefetcher stops too (not --idle-exit's 60 s later):
        // nothing keeps writing into a stopped server's data directory.
        const spool = join(good.dataDir, "pg_wal", ".pgha", "prefetch");
        const holder = JSON.parse(await readFile(join(spool, "lock"), "utf8")) as { pid: number };
        const alive = () => {
          try {
            process.kill(holder.pid, 0);
            return true;
          } catch (error) {
            return (error as NodeJS.ErrnoException).code === "EPERM";
          }
        };
        expect(alive(), "the prefetcher runs while its server does").toBe(true);
        await good.stop();
        await waitFor("the prefetcher to stop with its server", async () => !alive(), 15_000);
        expect(existsSync(join(spool, "lock")), "it released the spool").toBe(false);
        expect((await readdir(spool)).filter((n) => SEGMENT.test(n))).toEqual([]);
      } finally {
        await good.destroy();
      }

      // The last segment's predecessor is damaged in the repository.
      const segments = (await readdir(join(setup.cluster.dataDir, "pg_wal"))).filter(
        (n) => SEGMENT.test(n) && n < last,
      );
      const victim = segments.sort().at(-1) as string;
      const file = parseWalFileName(victim);
      if (!file) throw new Error(victim);
      for (const key of await archivedWalKeys(store, file.name)) await setup.repo.corrupt(key);
      const bad = await restore("corrupt");
      try {
        await bad.start().catch(() => undefined);
        await waitFor(
          "recovery to stop",
          async () => /could not restore file/.test(await bad.serverLog()),
          60_000,
        );
        const log = await bad.serverLog();
        // Exit code 126, which PostgreSQL words "command not executable": FATAL, not the end.
        expect(log).toMatch(
          new RegExp(
            `FATAL: +could not restore file "${victim}" from archive: command not executable`,
          ),
        );
        expect(log).not.toMatch(/database system is ready to accept connections/);
        // The prefetcher meets the corrupt object too (it may still be on its way on a
        // loaded machine: the foreground fetch can get there first).
        const prefetchLog = () =>
          readFile(
            join(bad.dataDir, "pg_wal", ".pgha", "prefetch", "prefetcher.log"),
            "utf8",
          ).catch(() => "");
        const failed = new RegExp(`prefetching ${victim} failed`);
        await waitFor(
          "the prefetcher to fail",
          async () => failed.test(await prefetchLog()),
          30_000,
        ).catch(() => undefined);
        expect(await prefetchLog()).toMatch(failed);
      } finally {
        await bad.destroy().catch(() => undefined);
      }
    }, 180_000);
  },
);
