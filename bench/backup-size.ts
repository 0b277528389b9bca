/**
 * Peak RSS against the size of the relation data (issue 14, point 5, beyond file count):
 * block maps grow with the data (a 16-byte hash and a byte per 8 KiB block in every
 * manifest), so this measures how much each command's peak grows per GiB. For each size
 * in BENCH_SIZE_GIB (default 1 and 16), a real PostgreSQL 15 cluster gets that many 1 GiB
 * relation-like files (`base/<db>/8000000`, `.1`, ...: orphans to the server), sparse (they
 * read as zeros: hashing, not the disk, is what a backup spends on them), then
 * `pgha backup`, `restore` into an empty directory, `backup --type incr` (one block of each
 * file changed) and `restore --delta` of that incremental over the restore run under
 * /usr/bin/time through bin/pgha, as backup-files.ts runs them. The restore writes the
 * data for real: the scratch directory needs as much free space as the largest size.
 */
import { chown, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { serverUser } from "../test/helpers/pg-cluster.js";
import { REPO_ROOT } from "../test/helpers/pgha.js";
import { archiverIdle, archivingCluster } from "./bench-cluster.js";
import { fixed, log, measured, pghaEnv, renderTable } from "./common.js";

export const SIZES_GIB = (process.env.BENCH_SIZE_GIB ?? "1,16")
  .split(",")
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0);

const LAUNCHER = join(REPO_ROOT, "bin", "pgha");
const GIB = 2 ** 30;
const RUNS = ["backup", "restore", "backup --type incr", "restore --delta"] as const;
type RunName = (typeof RUNS)[number];

export interface SizeResult {
  gib: number;
  /** Peak RSS (MB, /usr/bin/time %M) and wall time (s) of each run. */
  runs: Record<RunName, { peakRssMb: number; seconds: number }>;
}

/** One block of each file written (a page of bytes at block `block`). */
async function touchFiles(files: string[], block: number): Promise<void> {
  const user = serverUser();
  for (const file of files) {
    const handle = await open(file, "r+");
    await handle.write(Buffer.alloc(8192, 0x5a), 0, 8192, block * 8192);
    await handle.close();
    if (user) await chown(file, user.uid, user.gid);
  }
}

async function benchSize(gib: number): Promise<SizeResult> {
  const { scratch, repoEnv, cluster } = await archivingCluster("size");
  const oid = await cluster.sql("SELECT oid FROM pg_database WHERE datname = 'postgres'");
  const user = serverUser();
  const files: string[] = [];
  for (let i = 0; i < gib; i++) {
    const file = join(cluster.dataDir, "base", oid, i === 0 ? "8000000" : `8000000.${i}`);
    const handle = await open(file, "w", 0o600);
    await handle.truncate(GIB);
    await handle.close();
    if (user) await chown(file, user.uid, user.gid);
    files.push(file);
  }
  await touchFiles(files, 1);
  await cluster.sql("CHECKPOINT");
  await archiverIdle(cluster);
  const env = pghaEnv({ ...repoEnv, ...cluster.connEnv() });
  const runs = {} as SizeResult["runs"];
  const run = async (name: RunName, args: string[]) => {
    const done = await measured({ file: LAUNCHER, args, env }, scratch);
    runs[name] = { peakRssMb: done.maxRssKb / 1024, seconds: done.wallMs / 1000 };
    log(
      `${gib} GiB, ${name}: ${fixed(done.wallMs / 1000, 1)} s, peak RSS ${fixed(done.maxRssKb / 1024, 0)} MB`,
    );
    await archiverIdle(cluster);
    return done.stdout.trim();
  };
  const full = await run("backup", ["backup", "--fast"]);
  const target = join(scratch, "restored");
  await run("restore", ["restore", "--pgdata", target, "--backup", full]);
  await touchFiles(files, 3);
  await new Promise((r) => setTimeout(r, 1000)); // ids have a resolution of one second
  const incr = await run("backup --type incr", ["backup", "--fast", "--type", "incr"]);
  await run("restore --delta", ["restore", "--pgdata", target, "--backup", incr, "--delta"]);
  await rm(target, { recursive: true, force: true });
  await cluster.destroy();
  return { gib, runs };
}

export async function benchSizes(): Promise<{ report: unknown; text: string }> {
  const results: SizeResult[] = [];
  for (const gib of SIZES_GIB) results.push(await benchSize(gib));
  const first = results[0];
  const last = results.at(-1);
  const slope = (name: RunName) =>
    first && last && last.gib > first.gib
      ? (last.runs[name].peakRssMb - first.runs[name].peakRssMb) / (last.gib - first.gib)
      : undefined;
  const text =
    `\nPeak RSS against relation data (sparse 1 GiB relation files; one block of each changed for the incremental)\n\n` +
    renderTable(
      ["run", ...results.map((r) => `${r.gib} GiB: MB (s)`), "MB more per GiB"],
      RUNS.map((name) => [
        `pgha ${name}`,
        ...results.map(
          (r) => `${fixed(r.runs[name].peakRssMb, 0)} (${fixed(r.runs[name].seconds, 1)})`,
        ),
        fixed(slope(name), 1),
      ]),
    ) +
    "\n";
  return {
    report: { results, perGibMb: Object.fromEntries(RUNS.map((name) => [name, slope(name)])) },
    text,
  };
}
