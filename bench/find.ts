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
 *        pg_waldump -r Heap -r Transaction over the on-disk segments (what find asks of it)
 *        pg_waldump over the on-disk segments, every record (what an operator would read)
 *        pgha restore find --dropped pgbench_history      (from the repository: fetch,
 *                                                          decompress, check, pg_waldump)
 *        pgha restore find --deleted-from pgbench_accounts (every heap DELETE counted too)
 *      every pg_waldump's output going to a pipe that is read and thrown away;
 *   4. prints the medians and each find's ratio to the first pg_waldump row (the target is
 *      under 2x), and writes .bench/find.json.
 *
 * PGHA_BENCH_LOG_LEVEL=debug prints where one find's time goes; PGHA_BENCH_PROF=DIR writes a
 * CPU profile of one find into DIR.
 */
import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PG_BIN, PgCluster } from "../test/helpers/pg-cluster.js";
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

async function main(): Promise<void> {
  requirePostgres();
  const repo = await makeTestRepo("local", null);
  onCleanup("repository", () => repo.cleanup());
  let env: Record<string, string> = {
    ...repo.env,
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
  const find = (kind: string, table: string): Command => ({
    file: PGHA_BIN,
    args: findArgs(kind, table),
    env: pghaEnv(env),
  });
  const variants: { id: string; label: string; command: Command }[] = [
    { id: "waldump", label: "pg_waldump -r Heap -r Transaction (on disk)", command: waldump(true) },
    { id: "waldump-all", label: "pg_waldump, every record (on disk)", command: waldump(false) },
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
  const times = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  for (const v of variants) await timedDrain(v.command); // warm-up: binaries and files into the page cache
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length];
      if (!v) continue;
      await syncAll();
      times.get(v.id)?.push(await timedDrain(v.command));
    }
    log(`round ${round + 1}/${ROUNDS} done`);
  }
  const medianOf = (id: string) => median([...(times.get(id) ?? [])].sort((a, b) => a - b));
  const base = medianOf("waldump");
  const rows = variants.map((v) => ({
    id: v.id,
    label: v.label,
    medianMs: medianOf(v.id),
    runsMs: times.get(v.id) ?? [],
    ratio: medianOf(v.id) / base,
  }));
  const width = Math.max(...rows.map((r) => r.label.length));
  process.stdout.write(
    `\n${scanned.segments} segments (${((scanned.segments * 16) / 1024).toFixed(2)} GiB of WAL), ${ROUNDS} interleaved rounds, medians:\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `  ${r.label.padEnd(width)}  ${fixed(r.medianMs / 1000, 2, " s").padStart(8)}  ${fixed(r.ratio, 2, "x")}\n`,
    );
  const worst = Math.max(...rows.filter((r) => r.id.startsWith("find")).map((r) => r.ratio));
  process.stdout.write(`find / pg_waldump: ${fixed(worst, 2, "x")} at worst (target: under 2x)\n`);
  await writeBenchReport(OUT_FILE, {
    machine: machineFacts(),
    postgres: pgVersion,
    pgWaldump: toolVersion(PG_WALDUMP, ["--version"]),
    segments: scanned.segments,
    rounds: ROUNDS,
    rows,
    worstRatio: worst,
  });
  log(`wrote ${OUT_FILE}`);
}

void runBench(main);
