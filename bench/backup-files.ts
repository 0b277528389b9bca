/**
 * Issue 14, point 5: a cluster with 100,000 files backs up and restores with a peak RSS
 * under 256 MB; so do an incremental backup of it, the restore of that incremental (its
 * chain: full + incr) and a `restore --delta` to it over the full's restore. The files are made the way relation files look: BENCH_FILES (100,000)
 * files named like relfilenodes (9000000, 9000001, ...) of one 8 KiB page each in the
 * `postgres` database's directory of a real PostgreSQL 15 cluster (orphans to the server,
 * which never opens them; to pgha, a database directory of 100,000 relations). Then
 * `pgha backup --fast` and `pgha restore --pgdata DIR --backup ID` run under
 * /usr/bin/time through the launcher users run (bin/pgha: it execs node with pgha's
 * V8 settings, so the measured process is node itself), and /proc is sampled every 100 ms for the RSS of the whole process tree
 * (worker threads are in pgha's process; the tree adds /usr/bin/time and any child).
 */
import { randomBytes } from "node:crypto";
import { chown, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { serverUser } from "../test/helpers/pg-cluster.js";
import { REPO_ROOT } from "../test/helpers/pgha.js";
import { archiverIdle, archivingCluster } from "./bench-cluster.js";
import { log, measured, pghaEnv } from "./common.js";

export const FILES = Number(process.env.BENCH_FILES ?? 100_000);
export const FILES_RSS_LIMIT_MB = 256;

export interface ManyFilesRun {
  wallMs: number;
  /** /usr/bin/time's maximum resident set size of pgha's process (threads included). */
  peakRssMb: number;
  /** The largest sum of the RSS of the process tree seen by sampling /proc. */
  treeRssMb: number;
}

export interface ManyFilesResult {
  files: number;
  /** Files in the cluster's data directory, ours included. */
  clusterFiles: number;
  backup: ManyFilesRun;
  restore: ManyFilesRun;
  restoredFiles: number;
  /** After 1% of the files are rewritten and 1% more are made: `backup --type incr`. */
  incrBackup: ManyFilesRun;
  /** The incremental restored into an empty directory (assembled from full + incr). */
  chainRestore: ManyFilesRun;
  /** The incremental restored --delta over the full's restore. */
  deltaRestore: ManyFilesRun;
}

const PAGE = 8192;
const LAUNCHER = join(REPO_ROOT, "bin", "pgha");

/**
 * `count` files of one page each from number `first`, a few random bytes then zeros, owned
 * by the server user (an existing one is rewritten with new bytes).
 */
async function makeRelationFiles(dir: string, count: number, first = 0): Promise<void> {
  const user = serverUser();
  let next = first;
  const worker = async () => {
    while (next < first + count) {
      const n = next++;
      const file = join(dir, String(9_000_000 + n));
      const page = Buffer.alloc(PAGE);
      randomBytes(64).copy(page, 24);
      await writeFile(file, page, { mode: 0o600 });
      if (user) await chown(file, user.uid, user.gid);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) n++;
  return n;
}

const toRun = (run: { wallMs: number; maxRssKb: number; treeRssKb: number }): ManyFilesRun => ({
  wallMs: run.wallMs,
  peakRssMb: run.maxRssKb / 1024,
  treeRssMb: run.treeRssKb / 1024,
});

export async function benchManyFiles(count = FILES): Promise<ManyFilesResult> {
  const { scratch, repoEnv, cluster } = await archivingCluster("files");
  const oid = await cluster.sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
  log(`making ${count} relation-like files in base/${oid}`);
  const began = Date.now();
  await makeRelationFiles(join(cluster.dataDir, "base", oid), count);
  log(`made them in ${((Date.now() - began) / 1000).toFixed(0)} s`);
  await cluster.sql("CHECKPOINT");
  await archiverIdle(cluster);
  const clusterFiles = await countFiles(cluster.dataDir);
  const env = pghaEnv({ ...repoEnv, ...cluster.connEnv() });

  const backup = await measured({ file: LAUNCHER, args: ["backup", "--fast"], env }, scratch, {
    sampleTree: true,
  });
  const id = backup.stdout.trim();
  log(
    `backup ${id} of ${clusterFiles} files: ${(backup.wallMs / 1000).toFixed(1)} s, peak RSS ${(backup.maxRssKb / 1024).toFixed(0)} MB (tree ${(backup.treeRssKb / 1024).toFixed(0)} MB)`,
  );
  await archiverIdle(cluster);
  const target = join(scratch, "restored");
  const restore = await measured(
    {
      file: LAUNCHER,
      args: ["restore", "--pgdata", target, "--backup", id],
      env,
    },
    scratch,
    { sampleTree: true },
  );
  const restoredFiles = await countFiles(join(target, "base", oid));
  log(
    `restore: ${(restore.wallMs / 1000).toFixed(1)} s, peak RSS ${(restore.maxRssKb / 1024).toFixed(0)} MB (tree ${(restore.treeRssKb / 1024).toFixed(0)} MB), ${restoredFiles} files in base/${oid}`,
  );

  // An incremental of 1% rewritten and 1% new files, its chain restored, and --delta.
  const changed = Math.max(1, Math.floor(count / 100));
  await makeRelationFiles(join(cluster.dataDir, "base", oid), changed);
  await makeRelationFiles(join(cluster.dataDir, "base", oid), changed, count);
  await cluster.sql("CHECKPOINT");
  await archiverIdle(cluster);
  await new Promise((r) => setTimeout(r, 1000)); // ids have a resolution of one second
  const incr = await measured(
    { file: LAUNCHER, args: ["backup", "--fast", "--type", "incr"], env },
    scratch,
    { sampleTree: true },
  );
  const incrId = incr.stdout.trim();
  await archiverIdle(cluster);
  const report = (what: string, run: typeof incr) =>
    log(
      `${what}: ${(run.wallMs / 1000).toFixed(1)} s, peak RSS ${(run.maxRssKb / 1024).toFixed(0)} MB (tree ${(run.treeRssKb / 1024).toFixed(0)} MB)`,
    );
  report(`backup --type incr ${incrId}`, incr);
  const chained = join(scratch, "restored-incr");
  const chainRestore = await measured(
    { file: LAUNCHER, args: ["restore", "--pgdata", chained, "--backup", incrId], env },
    scratch,
    { sampleTree: true },
  );
  report("restore of the incremental (full + incr)", chainRestore);
  await rm(chained, { recursive: true, force: true });
  const deltaRestore = await measured(
    {
      file: LAUNCHER,
      args: ["restore", "--pgdata", target, "--backup", incrId, "--delta"],
      env,
    },
    scratch,
    { sampleTree: true },
  );
  report("restore --delta of the incremental over the full's restore", deltaRestore);
  await rm(target, { recursive: true, force: true });
  await cluster.destroy();
  return {
    files: count,
    clusterFiles,
    backup: toRun(backup),
    restore: toRun(restore),
    restoredFiles,
    incrBackup: toRun(incr),
    chainRestore: toRun(chainRestore),
    deltaRestore: toRun(deltaRestore),
  };
}
