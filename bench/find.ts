/**
 * `pgha restore find` speed: `npm run bench:find` (builds dist/, then `tsx bench/find.ts`).
 *
 * Reading WAL must not make finding the mistake slower than reading it by hand. This
 * benchmark:
 *
 *   1. starts a throwaway PostgreSQL 15 cluster archiving into a local repository with
 *      pgha wal-push, takes a backup (with its relation map), then runs pgbench until
 *      64 complete 16 MiB segments (PGHA_BENCH_SEGMENTS) after the backup are archived;
 *   2. learns the range find reads (its --json `scanned`), and fetches exactly those
 *      segments once into a directory on disk (pgha wal-fetch);
 *   3. in interleaved rounds (PGHA_BENCH_ROUNDS, default 5; the order rotates, a noisy
 *      machine slows all alike), after a global `sync`, times one process each:
 *        pg_waldump over the on-disk segments, every record (the baseline: what
 *                                                          an operator would read)
 *        pg_waldump -r Heap -r Transaction over the on-disk segments (what find asks of
 *                                                          it: the stricter comparison)
 *        pgha restore find --dropped pgbench_history      (from the repository: fetch,
 *                                                          decompress, check, pg_waldump)
 *        pgha restore find --deleted-from pgbench_accounts (every heap DELETE counted too)
 *      every pg_waldump's output going to a pipe that is read and thrown away;
 *   4. prints the medians, each row's ratio to both pg_waldump rows (the target: under 2x
 *      the first) and the load average after each round, and writes .bench/find.json.
 *
 * PGHA_BENCH_KEEP=DIR keeps the repository for a later run; PGHA_BENCH_BASELINE=DIR adds
 * the finds of another built checkout (e.g. the previous commit) to the same rounds.
 * PGHA_BENCH_LOG_LEVEL=debug prints where one find's time goes; PGHA_BENCH_PROF=DIR writes a
 * CPU profile of one find into DIR.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { PG_BIN, PgCluster, serverUser } from "../test/helpers/pg-cluster.js";
import { PGHA_BIN, PGHA_ENTRY, REPO_ROOT } from "../test/helpers/pgha.js";
import { archiveConf } from "../test/helpers/restore.js";
import { makeTestRepo } from "../test/helpers/test-repo.js";
import {
  type Command,
  fixed,
  log,
  machineFacts,
  median,
  onCleanup,
  pghaEnv,
  requirePostgres,
  runBench,
  runProcess,
  syncAll,
  tempDir,
  toolVersion,
  writeBenchReport,
} from "./common.js";

const SEGMENTS = Number(process.env.PGHA_BENCH_SEGMENTS ?? 64);
const ROUNDS = Number(process.env.PGHA_BENCH_ROUNDS ?? 5);
const OUT_FILE = join(REPO_ROOT, ".bench", "find.json");
const PG_WALDUMP = join(PG_BIN, "pg_waldump");

/** Runs a process whose stdout is read (and dropped) through a pipe, as find reads pg_waldump; its wall time. */
function timedDrain(command: Command): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command.file, command.args, {
      env: command.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stdout.on("data", () => undefined);
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0)
        reject(new Error(`${command.file} ${command.args.join(" ")} exited ${code}: ${stderr}`));
      else resolve(Number(process.hrtime.bigint() - start) / 1e6);
    });
  });
}

interface Prepared {
  /** PGHA_REPO, PGHA_CLUSTER, ... for find. */
  env: Record<string, string>;
  pgVersion: string;
}

/** A throwaway cluster archiving into a new local repository, SEGMENTS of pgbench WAL. */
async function prepare(repoDir: string | undefined): Promise<Prepared> {
  let repoEnv: Record<string, string>;
  if (repoDir) repoEnv = { PGHA_REPO: repoDir };
  else {
    const repo = await makeTestRepo("local", null);
    onCleanup("repository", () => repo.cleanup());
    repoEnv = repo.env;
  }
  let env: Record<string, string> = {
    ...repoEnv,
    PGHA_CLUSTER: "bench",
    PGHA_ARCHIVE_TIMEOUT: "120s",
    PGHA_LOG_LEVEL: "warn",
  };
  const cluster = await PgCluster.init({
    env,
    conf: [...archiveConf(), "max_wal_size = '4GB'", "checkpoint_timeout = '30min'"],
  });
  onCleanup("PostgreSQL cluster", () => cluster.destroy());
  await cluster.start();
  env = { ...env, ...cluster.connEnv() };
  const pgVersion = await cluster.sql("SHOW server_version");
  log(
    `PostgreSQL ${pgVersion}: pgbench -i -s 20, a backup, then pgbench until ${SEGMENTS} segments`,
  );
  await cluster.pgbench(["-i", "-s", "20", "-q"]);
  const backup = await runProcess({
    file: PGHA_BIN,
    args: ["backup", "--fast"],
    env: pghaEnv(env),
    asServerUser: true,
  });
  if (backup.code !== 0) throw new Error(`backup failed: ${backup.stderr}`);
  const startSegment = await cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
  for (let round = 0; ; round++) {
    const current = await cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    const made =
      Number.parseInt(current.slice(16), 16) - Number.parseInt(startSegment.slice(16), 16);
    if (made >= SEGMENTS) break;
    if (round > 300) throw new Error(`only ${made} segments after ${round} pgbench runs`);
    log(`${made} segments so far; pgbench -T 5`);
    await cluster.pgbench(["-T", "5", "-c", "2", "-j", "2"]);
  }
  const last = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
  for (let i = 0; ; i++) {
    const archived = await cluster.sql(
      "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
    );
    if (archived >= last) break;
    if (i > 1200) throw new Error(`${last} was not archived`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await cluster.stop("fast");
  return { env: { ...repoEnv, PGHA_CLUSTER: "bench", PGHA_LOG_LEVEL: "warn" }, pgVersion };
}

/**
 * PGHA_BENCH_KEEP=DIR keeps the repository in DIR/repo (and what the run learnt in
 * DIR/state.json) so that a later run with the same DIR times find again on the same WAL
 * without making it anew (for comparing builds).
 */
async function prepared(): Promise<Prepared> {
  const keep = process.env.PGHA_BENCH_KEEP;
  if (!keep) return prepare(undefined);
  const stateFile = join(keep, "state.json");
  if (existsSync(stateFile)) {
    log(`reusing the repository kept in ${keep}`);
    return JSON.parse(await readFile(stateFile, "utf8")) as Prepared;
  }
  const repoDir = join(keep, "repo");
  await mkdir(repoDir, { recursive: true });
  const user = serverUser();
  if (user) await chown(repoDir, user.uid, user.gid);
  const state = await prepare(repoDir);
  await writeFile(stateFile, JSON.stringify(state));
  return state;
}

async function main(): Promise<void> {
  requirePostgres();
  const { env, pgVersion } = await prepared();
  log(
    `load average at the start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const findArgs = (kind: string, table: string) => ["restore", "find", kind, table, "--json"];
  const prof = process.env.PGHA_BENCH_PROF;
  if (prof) {
    // PGHA_BENCH_PROF=DIR: a CPU profile of one find into DIR.
    await runProcess({
      file: process.execPath,
      args: [
        `--cpu-prof`,
        `--cpu-prof-dir=${prof}`,
        PGHA_ENTRY,
        ...findArgs("--dropped", "pgbench_history"),
      ],
      env: pghaEnv(env),
    });
  }
  const probe = await runProcess({
    // PGHA_BENCH_LOG_LEVEL=debug shows where find's time goes.
    file: PGHA_BIN,
    args: findArgs("--dropped", "pgbench_history"),
    env: pghaEnv({ ...env, PGHA_LOG_LEVEL: process.env.PGHA_BENCH_LOG_LEVEL ?? "warn" }),
  });
  if (probe.code !== 0) throw new Error(`find failed: ${probe.stderr}`);
  if (probe.stderr.trim()) log(probe.stderr.trim());
  const scanned = JSON.parse(probe.stdout).scanned as {
    from: string;
    first: string;
    last: string;
    segments: number;
  };
  log(
    `find reads ${scanned.first} .. ${scanned.last} (${scanned.segments} segments) from ${scanned.from}`,
  );

  const walDir = await tempDir("pgha-bench-find-");
  await mkdir(walDir, { recursive: true });
  const names: string[] = [];
  const firstNo = Number.parseInt(scanned.first.slice(16), 16);
  for (let i = 0; i < scanned.segments; i++) {
    const name = `${scanned.first.slice(0, 16)}${(firstNo + i).toString(16).toUpperCase().padStart(8, "0")}`;
    names.push(name);
    const got = await runProcess({
      file: PGHA_BIN,
      args: ["wal-fetch", name, join(walDir, name)],
      env: pghaEnv(env),
    });
    if (got.code !== 0) throw new Error(`wal-fetch ${name}: ${got.stderr}`);
  }
  const endNo = firstNo + scanned.segments;
  const endLsn = `${Math.floor(endNo / 256)
    .toString(16)
    .toUpperCase()}/${((endNo % 256) * 0x1000000).toString(16).toUpperCase()}`;
  const waldump = (filtered: boolean): Command => ({
    file: PG_WALDUMP,
    args: [
      "--path",
      walDir,
      "--start",
      scanned.from,
      "--end",
      endLsn,
      ...(filtered ? ["-r", "Heap", "-r", "Transaction"] : []),
    ],
    env: { ...process.env, TZ: "UTC" },
  });
  const find = (kind: string, table: string, bin = PGHA_BIN): Command => ({
    file: bin,
    args: findArgs(kind, table),
    env: pghaEnv(env),
  });
  const variants: { id: string; label: string; command: Command }[] = [
    { id: "waldump-all", label: "pg_waldump, every record (on disk)", command: waldump(false) },
    { id: "waldump", label: "pg_waldump -r Heap -r Transaction (on disk)", command: waldump(true) },
    {
      id: "find-dropped",
      label: "pgha restore find --dropped (repository)",
      command: find("--dropped", "pgbench_history"),
    },
    {
      id: "find-deleted",
      label: "pgha restore find --deleted-from (repository)",
      command: find("--deleted-from", "pgbench_accounts"),
    },
  ];
  // PGHA_BENCH_BASELINE=DIR: a built checkout of another pgha, timed in the same rounds.
  const baseline = process.env.PGHA_BENCH_BASELINE;
  if (baseline) {
    const bin = join(baseline, "bin", "pgha");
    variants.push(
      {
        id: "baseline-find-dropped",
        label: `find --dropped, build in ${baseline}`,
        command: find("--dropped", "pgbench_history", bin),
      },
      {
        id: "baseline-find-deleted",
        label: `find --deleted-from, build in ${baseline}`,
        command: find("--deleted-from", "pgbench_accounts", bin),
      },
    );
  }
  const times = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  for (const v of variants) await timedDrain(v.command); // warm-up: binaries and files into the page cache
  const loads: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length];
      if (!v) continue;
      await syncAll();
      times.get(v.id)?.push(await timedDrain(v.command));
    }
    loads.push(loadavg()[0] ?? 0);
    log(`round ${round + 1}/${ROUNDS} done (load average ${(loadavg()[0] ?? 0).toFixed(2)})`);
  }
  const medianOf = (id: string) => median([...(times.get(id) ?? [])].sort((a, b) => a - b));
  // The baseline: pg_waldump on the same segments on disk, every record. The
  // filtered run (the resource managers find reads) is the stricter comparison.
  const plain = medianOf("waldump-all");
  const filtered = medianOf("waldump");
  const rows = variants.map((v) => ({
    id: v.id,
    label: v.label,
    medianMs: medianOf(v.id),
    runsMs: times.get(v.id) ?? [],
    ratio: medianOf(v.id) / plain,
    ratioFiltered: medianOf(v.id) / filtered,
  }));
  const width = Math.max(...rows.map((r) => r.label.length));
  process.stdout.write(
    `\n${scanned.segments} segments (${((scanned.segments * 16) / 1024).toFixed(2)} GiB of WAL), ${ROUNDS} interleaved rounds, medians (load average during the rounds: ${loads.map((l) => l.toFixed(1)).join(" ")}; 2 cores):\n`,
  );
  process.stdout.write(
    `  ${"".padEnd(width)}  ${"median".padStart(8)}  ${"/ plain".padStart(8)}  ${"/ filtered".padStart(10)}\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `  ${r.label.padEnd(width)}  ${fixed(r.medianMs / 1000, 2, " s").padStart(8)}  ${fixed(r.ratio, 2, "x").padStart(8)}  ${fixed(r.ratioFiltered, 2, "x").padStart(10)}\n`,
    );
  const finds = rows.filter((r) => r.id.startsWith("find"));
  const worst = Math.max(...finds.map((r) => r.ratio));
  const worstFiltered = Math.max(...finds.map((r) => r.ratioFiltered));
  process.stdout.write(
    `find / pg_waldump every record (the target, under 2x): ${fixed(worst, 2, "x")} at worst; find / pg_waldump -r Heap -r Transaction (stricter): ${fixed(worstFiltered, 2, "x")} at worst\n`,
  );
  await writeBenchReport(OUT_FILE, {
    machine: machineFacts(),
    postgres: pgVersion,
    pgWaldump: toolVersion(PG_WALDUMP, ["--version"]),
    segments: scanned.segments,
    rounds: ROUNDS,
    loadAverages: loads,
    baseline: "pg_waldump on the same segments on disk, every record, output read through a pipe",
    rows,
    worstRatio: worst,
    worstRatioFiltered: worstFiltered,
  });
  log(`wrote ${OUT_FILE}`);
}

void runBench(main);
