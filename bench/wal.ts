/**
 * WAL archive and restore benchmark: `npm run bench:wal` (builds dist/, then `tsx bench/wal.ts`).
 *
 * PostgreSQL runs archive_command once per 16 MiB segment and restore_command once per
 * segment it replays, one process at a time, so what matters is the wall time of one
 * whole process per segment. This benchmark:
 *
 *   1. makes 32 real segments (PGHA_BENCH_SEGMENTS) with pgbench on a throwaway PostgreSQL 15 cluster, into the
 *      pg_wal of a scratch data directory;
 *   2. starts the S3 test server (test/helpers/s3-server.ts: MinIO if a container engine
 *      answers, else s3rver on 127.0.0.1), and s3rver over TLS with the certificate of a
 *      private CA made for the run;
 *   3. per segment, after a global `sync`, runs one process of every variant, in an order
 *      that rotates from segment to segment (interleaved: a noisy machine slows all alike):
 *        cp SRC DST && sync DST                  (baseline: the classic archive_command)
 *        zstd -3 -q -f SRC -o DST                (baseline: the zstd CLI, no fsync)
 *        pgha wal-push pg_wal/NAME               (local repository zstd:3 / zstd:1 / zstd:6 /
 *                                                 none; S3 zstd:3; S3 over TLS with --s3-ca-file;
 *                                                 local and S3 zstd:3 encrypted with age)
 *      then the restores of that segment:
 *        cp ARCHIVED pg_wal/RECOVERYXLOG         (baseline: the classic restore_command)
 *        pgha wal-fetch NAME pg_wal/RECOVERYXLOG (from the local zstd:3, S3 and S3-TLS pushes)
 *      plus `node -e 0` and `pgha --version` as startup references. pgha runs in the data
 *      directory with pg_wal/NAME, as PostgreSQL runs it, so pg_wal/.pgha/ applies;
 *   4. counts the S3 requests of every pgha process (s3rver's request log; not on MinIO),
 *      prints a table and writes .bench/wal.json.
 *
 * Every variant first runs once untimed into a throwaway destination (binaries and modules
 * into the page cache). PGHA_BENCH_BASELINE=DIR adds the pgha rows of another built
 * checkout (DIR/bin/pgha with its dist/, e.g. a worktree of main), interleaved with this
 * one's: before and after in one run. The baseline trusts the TLS server's CA through
 * NODE_EXTRA_CA_CERTS, which is all it has. Everything it creates is removed at the end,
 * also on failure or Ctrl-C; it exits non-zero on failure.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { generateX25519Identity } from "../src/crypto/age.js";
import { parseWalFileName } from "../src/wal/names.js";
import { PgCluster } from "../test/helpers/pg-cluster.js";
import { PGHA_BIN, REPO_ROOT } from "../test/helpers/pgha.js";
import { listObjects, testS3Client } from "../test/helpers/s3-client.js";
import {
  type RunningS3,
  type S3TestServer,
  s3Env,
  startS3rver,
  startS3Server,
} from "../test/helpers/s3-server.js";
import { makeTestCa } from "../test/helpers/tls-ca.js";
import {
  CLOCK_TICKS,
  type Command,
  fixed,
  log,
  machineBusyMs,
  machineFacts,
  median,
  onCleanup,
  percentile,
  pghaEnv,
  requirePostgres,
  runBench,
  syncAll,
  tableLayout,
  tempDir,
  timed,
  toolVersion,
  writeBenchReport,
} from "./common.js";

/** PGHA_BENCH_SEGMENTS=N for a quick run. */
const SEGMENTS = Number(process.env.PGHA_BENCH_SEGMENTS ?? 32);
const SEGMENT_SIZE = 16 * 1024 * 1024;
const ZSTD = "/usr/bin/zstd";
const OUT_FILE = join(REPO_ROOT, ".bench", "wal.json");
const BASELINE = process.env.PGHA_BENCH_BASELINE;

// ---------------------------------------------------------------------------------------
// Segments

async function walSegmentNames(dataDir: string): Promise<string[]> {
  const names = await readdir(join(dataDir, "pg_wal"));
  return names.filter((name) => parseWalFileName(name)?.kind === "segment").sort();
}

/** Makes SEGMENTS complete 16 MiB segments with pgbench; copies them into `walDir`. */
async function makeSegments(walDir: string): Promise<{ names: string[]; pgVersion: string }> {
  requirePostgres();
  const cluster = await PgCluster.init({
    conf: ["archive_mode = off", "wal_keep_size = '4GB'", "max_wal_size = '4GB'"],
  });
  onCleanup("PostgreSQL cluster", () => cluster.destroy());
  await cluster.start();
  const pgVersion = await cluster.sql("SHOW server_version");
  log(`PostgreSQL ${pgVersion}: pgbench -i -s 30`);
  const started = Date.now();
  await cluster.pgbench(["-i", "-s", "30", "-q"]);

  let complete: string[] = [];
  for (let round = 0; ; round++) {
    const all = await walSegmentNames(cluster.dataDir);
    if (all.length >= SEGMENTS + 1) {
      // pg_walfile_name of the switch's end LSN (a segment boundary) names the segment
      // just completed; anything newer is the current segment (or a recycled one).
      const last = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
      complete = all.filter((name) => name <= last);
      if (complete.length >= SEGMENTS) break;
    }
    if (round >= 20)
      throw new Error(`pg_wal holds only ${all.length} segments after ${round} pgbench runs`);
    log(`pg_wal holds ${all.length} segments; pgbench -T 10`);
    await cluster.pgbench(["-T", "10", "-c", "2", "-j", "2"]);
  }
  // Stop first: the server writes nothing more into the chosen (complete) segments.
  await cluster.stop("fast");
  const chosen = complete.slice(-SEGMENTS);
  for (const name of chosen) {
    const path = join(walDir, name);
    await copyFile(join(cluster.dataDir, "pg_wal", name), path);
    await chmod(path, 0o644);
    const { size } = await stat(path);
    if (size !== SEGMENT_SIZE) throw new Error(`${name} is ${size} bytes, not ${SEGMENT_SIZE}`);
  }
  await cluster.destroy();
  log(
    `copied ${chosen[0]} .. ${chosen[chosen.length - 1]} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  return { names: chosen, pgVersion };
}

// ---------------------------------------------------------------------------------------
// Variants

type Kind = "push" | "fetch" | "reference";

interface Target {
  /** The process for segment `name` (number `i`). */
  command(name: string, i: number): Command;
  /** Bytes stored after all runs, when the variant stores anything. */
  storedBytes?(): Promise<number | undefined>;
  /** s3rver's request log, to count the requests of each process. */
  requestLog?: string | undefined;
}

interface Variant {
  id: string;
  label: string;
  kind: Kind;
  /** A fresh destination (called once for the warm-up, once for the timed runs). */
  target(): Promise<Target>;
}

interface Setup {
  /** The data directory whose pg_wal holds the segments. */
  dataDir: string;
  /** Where restores write pg_wal/RECOVERYXLOG. */
  restoreDir: string;
  s3: S3TestServer | undefined;
  s3Log: string | undefined;
  tls: { server: S3TestServer; caFile: string; requestLog: string } | undefined;
}

interface Build {
  name: string;
  bin: string;
  /** Whether it has --s3-ca-file (the baseline may not). */
  caFileOption: boolean;
}

/** Sum of file sizes under dir; for a local repository only the WAL objects (with their header line). */
async function bytesUnder(
  dir: string,
  filter: (path: string) => boolean = () => true,
): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (filter(path)) total += (await stat(path)).size;
  }
  return total;
}

function isWalObject(path: string): boolean {
  return path.includes("/wal/") && !path.includes("/.tmp-");
}

async function s3Bytes(server: S3TestServer, prefix: string, caFile?: string): Promise<number> {
  const client = testS3Client(server, caFile ? readFileSync(caFile) : undefined);
  let total = 0;
  try {
    for await (const { key, size } of listObjects(client, server.bucket, prefix)) {
      if (key.includes("/wal/")) total += size;
    }
  } finally {
    client.destroy();
  }
  return total;
}

/**
 * wal-push into a repository and wal-fetch from it: two variants that share the
 * repository of the push variant's latest target (warm-up, then timed).
 */
function pghaPair(
  build: Build,
  setup: Setup,
  id: string,
  label: string,
  repository: () => Promise<{
    env: Record<string, string>;
    storedBytes: () => Promise<number>;
    requestLog?: string | undefined;
  }>,
): Variant[] {
  let current: Awaited<ReturnType<typeof repository>> | undefined;
  const env = (extra: Record<string, string>) =>
    pghaEnv({ PGHA_CLUSTER: "bench", PGHA_RETRY_TIMEOUT: "20s", ...extra });
  const suffix = build.name === "this" ? "" : ` [${build.name}]`;
  return [
    {
      id: `${id}-push${build.name === "this" ? "" : `-${build.name}`}`,
      label: `pgha ${label}${suffix}`,
      kind: "push",
      target: async () => {
        current = await repository();
        const repo = current;
        return {
          command: (name) => ({
            file: build.bin,
            args: ["wal-push", join("pg_wal", name)],
            env: env(repo.env),
            cwd: setup.dataDir,
          }),
          storedBytes: repo.storedBytes,
          requestLog: repo.requestLog,
        };
      },
    },
    {
      id: `${id}-fetch${build.name === "this" ? "" : `-${build.name}`}`,
      label: `pgha ${label}${suffix}`,
      kind: "fetch",
      target: async () => {
        const repo = current;
        if (!repo) throw new Error(`${id}: fetch before push`);
        return {
          command: (name) => ({
            file: build.bin,
            args: ["wal-fetch", name, join("pg_wal", "RECOVERYXLOG")],
            env: env(repo.env),
            cwd: setup.restoreDir,
          }),
          requestLog: repo.requestLog,
        };
      },
    },
  ];
}

/** Encryption settings for the encrypted rows: one age key for the run. */
let encryption: Promise<Record<string, string>> | undefined;
function encryptionEnv(): Promise<Record<string, string>> {
  encryption ??= (async () => {
    const dir = await tempDir("pgha-bench-key-", 0o700);
    const { secretKey, publicKey } = generateX25519Identity();
    const file = join(dir, "bench.key");
    await writeFile(file, `${secretKey}\n`, { mode: 0o600 });
    return { PGHA_ENCRYPTION_RECIPIENTS: publicKey, PGHA_ENCRYPTION_IDENTITY_FILE: file };
  })();
  return encryption;
}

function pghaVariants(build: Build, setup: Setup): Variant[] {
  const list: Variant[] = [];
  // Encrypted rows of this build only (a baseline may not know the settings).
  if (build.name === "this") {
    list.push(
      ...pghaPair(build, setup, "local-zstd3-age", "local zstd:3 encrypted", async () => {
        const dir = await tempDir("pgha-bench-repo-", 0o755);
        return {
          env: { PGHA_REPO: dir, PGHA_COMPRESS: "zstd:3", ...(await encryptionEnv()) },
          storedBytes: () => bytesUnder(dir, isWalObject),
        };
      }),
    );
  }
  for (const compress of ["zstd:3", "zstd:1", "zstd:6", "none"]) {
    const pair = pghaPair(
      build,
      setup,
      `local-${compress.replace(":", "")}`,
      `local ${compress}`,
      async () => {
        const dir = await tempDir("pgha-bench-repo-", 0o755);
        return {
          env: { PGHA_REPO: dir, PGHA_COMPRESS: compress },
          storedBytes: () => bytesUnder(dir, isWalObject),
        };
      },
    );
    // Restores are timed from the default compression only.
    list.push(...(compress === "zstd:3" ? pair : pair.slice(0, 1)));
  }
  const s3 = setup.s3;
  if (s3) {
    list.push(
      ...pghaPair(build, setup, "s3", `S3 (${s3.kind}) zstd:3`, async () => {
        const prefix = `bench-${randomBytes(6).toString("hex")}`;
        return {
          env: { ...s3Env(s3, prefix), PGHA_COMPRESS: "zstd:3" },
          storedBytes: () => s3Bytes(s3, prefix),
          requestLog: setup.s3Log,
        };
      }),
    );
    if (build.name === "this") {
      list.push(
        ...pghaPair(build, setup, "s3-age", `S3 (${s3.kind}) zstd:3 encrypted`, async () => {
          const prefix = `bench-${randomBytes(6).toString("hex")}`;
          return {
            env: { ...s3Env(s3, prefix), PGHA_COMPRESS: "zstd:3", ...(await encryptionEnv()) },
            storedBytes: () => s3Bytes(s3, prefix),
            requestLog: setup.s3Log,
          };
        }),
      );
    }
  }
  const tls = setup.tls;
  if (tls) {
    const trust: Record<string, string> = build.caFileOption
      ? { PGHA_S3_CA_FILE: tls.caFile }
      : { NODE_EXTRA_CA_CERTS: tls.caFile };
    const how = build.caFileOption ? "--s3-ca-file" : "NODE_EXTRA_CA_CERTS";
    list.push(
      ...pghaPair(build, setup, "s3-tls", `S3 (s3rver, TLS, ${how}) zstd:3`, async () => {
        const prefix = `bench-${randomBytes(6).toString("hex")}`;
        return {
          env: { ...s3Env(tls.server, prefix), PGHA_COMPRESS: "zstd:3", ...trust },
          storedBytes: () => s3Bytes(tls.server, prefix, tls.caFile),
          requestLog: tls.requestLog,
        };
      }),
    );
  }
  list.push({
    id: `pgha-version${build.name === "this" ? "" : `-${build.name}`}`,
    label: `pgha --version${build.name === "this" ? "" : ` [${build.name}]`}`,
    kind: "reference",
    target: async () => ({
      command: () => ({ file: build.bin, args: ["--version"], env: pghaEnv({}) }),
    }),
  });
  return list;
}

function variants(setup: Setup, builds: Build[]): Variant[] {
  const walDir = join(setup.dataDir, "pg_wal");
  const list: Variant[] = [
    {
      id: "node-startup",
      label: "node -e 0",
      kind: "reference",
      target: async () => ({
        command: () => ({ file: process.execPath, args: ["-e", "0"] }),
      }),
    },
    {
      id: "cp-sync",
      label: "cp + sync",
      kind: "push",
      target: async () => {
        const dir = await tempDir("pgha-bench-cp-");
        return {
          command: (name) => ({
            file: "/bin/sh",
            args: ["-c", 'cp "$1" "$2" && sync "$2"', "sh", join(walDir, name), join(dir, name)],
          }),
          storedBytes: () => bytesUnder(dir),
        };
      },
    },
    {
      id: "zstd-cli-3",
      label: "zstd -3 CLI",
      kind: "push",
      target: async () => {
        const dir = await tempDir("pgha-bench-zstd-");
        return {
          command: (name) => ({
            file: ZSTD,
            args: ["-3", "-q", "-f", join(walDir, name), "-o", join(dir, `${name}.zst`)],
          }),
          storedBytes: () => bytesUnder(dir),
        };
      },
    },
    {
      id: "cp-restore",
      label: "cp (restore_command)",
      kind: "fetch",
      target: async () => ({
        command: (name) => ({
          file: "/bin/cp",
          args: [join(walDir, name), join(setup.restoreDir, "pg_wal", "RECOVERYXLOG")],
        }),
      }),
    },
  ];
  for (const build of builds) list.push(...pghaVariants(build, setup));
  return list;
}

// ---------------------------------------------------------------------------------------
// Measuring

interface Result {
  id: string;
  label: string;
  kind: Kind;
  samplesMs: number[];
  medianMs: number;
  p90Ms: number;
  /** Mean CPU time (user + system) per run, of the process and its children. */
  cpuMs: number | null;
  /** S3 requests per process (s3rver's request log, median), for S3 variants on s3rver. */
  requestsPerRun: number | null;
  /** S3 requests of each process in order (the first push of a data directory learns more). */
  requests: number[] | null;
  /** The requests of the second run ("METHOD key"), as an example. */
  exampleRequests: string[] | null;
  mbPerSec: number | null;
  rawBytes: number | null;
  storedBytes: number | null;
  compressionRatio: number | null;
  /** Push: against cp + sync; fetch: against cp. */
  vsCp: number | null;
  vsZstdCli: number | null;
}

/**
 * CPU time (user + system, ms) of all waited-for child processes so far, from
 * /proc/self/stat (cutime, cstime); undefined where there is no /proc. Clock-tick
 * resolution, so only meaningful summed over many runs.
 */
function childCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of proc(5); fields[0] is field 3.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

interface Running {
  variant: Variant;
  target: Target;
  samplesMs: number[];
  cpuMs: number | undefined;
  requests: number[];
  exampleRequests: string[] | null;
}

async function runOnce(run: Running, name: string, i: number): Promise<void> {
  const logFile = run.target.requestLog;
  if (logFile) await writeFile(logFile, "");
  const cpuBefore = childCpuMs();
  run.samplesMs.push(await timed(run.target.command(name, i)));
  const cpuAfter = childCpuMs();
  run.cpuMs =
    run.cpuMs === undefined || cpuBefore === undefined || cpuAfter === undefined
      ? undefined
      : run.cpuMs + cpuAfter - cpuBefore;
  if (logFile) {
    const lines = readFileSync(logFile, "utf8").split("\n").filter(Boolean);
    run.requests.push(lines.length);
    if (i === 1) {
      run.exampleRequests = lines.map((line) =>
        line.replace(/ \/[^/]+\/bench-[0-9a-f]+\/v1\/clusters\/bench\//, " ").replace(/\?.*/, ""),
      );
    }
  }
}

/** Runs every variant once per segment, the order rotating; timed after an untimed warm-up. */
async function measureAll(list: Variant[], names: string[]): Promise<Result[]> {
  const first = names[0];
  if (first === undefined) throw new Error("no segments");
  log("warm-up: every variant once, untimed");
  for (const variant of list) await timed((await variant.target()).command(first, 0));
  const running: Running[] = [];
  for (const variant of list) {
    running.push({
      variant,
      target: await variant.target(),
      samplesMs: [],
      cpuMs: childCpuMs() === undefined ? undefined : 0,
      requests: [],
      exampleRequests: null,
    });
  }
  const busyBefore = machineBusyMs();
  const started = process.hrtime.bigint();
  const ownBefore = childCpuMs();
  for (const [i, name] of names.entries()) {
    await syncAll();
    // Pushes first (a restore reads what its push stored), each group in a rotated order.
    for (const kind of ["reference", "push", "fetch"] as const) {
      const group = running.filter((r) => r.variant.kind === kind);
      const shift = i % Math.max(group.length, 1);
      for (const run of [...group.slice(shift), ...group.slice(0, shift)]) {
        await runOnce(run, name, i);
      }
    }
    if ((i + 1) % 8 === 0) log(`${i + 1} of ${names.length} segments`);
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const busyAfter = machineBusyMs();
  const ownAfter = childCpuMs();
  if (busyBefore !== undefined && busyAfter !== undefined && ownBefore !== undefined && ownAfter) {
    const others = Math.max(0, busyAfter - busyBefore - (ownAfter - ownBefore)) / elapsedMs;
    log(`other processes used ${others.toFixed(2)} CPUs on average during the runs`);
    otherCpus = Math.round(others * 100) / 100;
  }
  const results: Result[] = [];
  for (const run of running) {
    const { variant } = run;
    const sorted = [...run.samplesMs].sort((a, b) => a - b);
    const medianMs = median(sorted);
    const stored = (await run.target.storedBytes?.()) ?? null;
    const moves = variant.kind !== "reference";
    const rawBytes = variant.kind === "push" ? names.length * SEGMENT_SIZE : null;
    results.push({
      id: variant.id,
      label: variant.label,
      kind: variant.kind,
      samplesMs: run.samplesMs.map((ms) => Math.round(ms * 100) / 100),
      medianMs,
      p90Ms: percentile(sorted, 90),
      cpuMs: run.cpuMs === undefined ? null : run.cpuMs / names.length,
      requestsPerRun: run.target.requestLog
        ? median([...run.requests].sort((a, b) => a - b))
        : null,
      requests: run.target.requestLog ? run.requests : null,
      exampleRequests: run.exampleRequests,
      mbPerSec: moves ? SEGMENT_SIZE / 1e6 / (medianMs / 1000) : null,
      rawBytes,
      storedBytes: stored,
      compressionRatio: stored && rawBytes ? rawBytes / stored : null,
      vsCp: null,
      vsZstdCli: null,
    });
  }
  return results;
}

let otherCpus: number | null = null;

// ---------------------------------------------------------------------------------------
// Report

function table(results: Result[]): string {
  const header = [
    "variant",
    "median ms",
    "p90 ms",
    "cpu ms",
    "requests",
    "MB/s",
    "ratio",
    "vs cp",
    "vs zstd -3",
  ];
  const row = (r: Result) => [
    r.label,
    fixed(r.medianMs, 1),
    fixed(r.p90Ms, 1),
    fixed(r.cpuMs, 0),
    fixed(r.requestsPerRun, 2),
    fixed(r.mbPerSec, 0),
    fixed(r.compressionRatio, 2),
    fixed(r.vsCp, 2, "x"),
    fixed(r.vsZstdCli, 2, "x"),
  ];
  const sections: [string, Result[]][] = [
    [
      "archive (archive_command: one process per segment)",
      results.filter((r) => r.kind === "push"),
    ],
    [
      "restore (restore_command: one process per segment)",
      results.filter((r) => r.kind === "fetch"),
    ],
    ["start-up references", results.filter((r) => r.kind === "reference")],
  ];
  const { line, rule } = tableLayout(header, results.map(row));
  const out = [line(header)];
  for (const [title, group] of sections) {
    if (group.length === 0) continue;
    out.push(rule, title);
    for (const r of group) out.push(line(row(r)));
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const began = Date.now();
  const scratch = await tempDir("pgha-bench-wal-", 0o755);
  const dataDir = join(scratch, "data");
  const restoreDir = join(scratch, "restore");
  await mkdir(join(dataDir, "pg_wal"), { recursive: true });
  await mkdir(join(restoreDir, "pg_wal"), { recursive: true });
  const { names, pgVersion } = await makeSegments(join(dataDir, "pg_wal"));

  const s3Log = join(scratch, "s3-requests.log");
  let s3: RunningS3;
  try {
    s3 = await startS3Server(log, { requestLog: s3Log });
    const stop = s3.stop;
    onCleanup("S3 test server", () => stop());
    log(`S3 test server: ${s3.server.kind} at ${s3.server.endpoint}`);
  } catch (error) {
    throw new Error(`cannot start the S3 test server: ${(error as Error).message}`);
  }
  const caDir = join(scratch, "ca");
  await mkdir(caDir);
  const ca = await makeTestCa(caDir);
  const tlsLog = join(scratch, "s3-tls-requests.log");
  const tls = await startS3rver({
    tls: { keyFile: ca.keyFile, certFile: ca.certFile },
    requestLog: tlsLog,
  });
  onCleanup("TLS S3 test server", () => tls.stop());
  log(`TLS S3 test server: s3rver at ${tls.server.endpoint}`);

  const builds: Build[] = [{ name: "this", bin: PGHA_BIN, caFileOption: true }];
  if (BASELINE) {
    const bin = join(resolve(BASELINE), "bin", "pgha");
    if (!existsSync(join(resolve(BASELINE), "dist"))) {
      throw new Error(`PGHA_BENCH_BASELINE=${BASELINE} has no dist/: build it first`);
    }
    const options = readFileSync(join(resolve(BASELINE), "dist/src/config/options.js"), "utf8");
    builds.push({ name: "baseline", bin, caFileOption: options.includes("s3-ca-file") });
    log(`baseline: ${bin}`);
  }
  const setup: Setup = {
    dataDir,
    restoreDir,
    s3: s3.server,
    s3Log: s3.server.kind === "s3rver" ? s3Log : undefined,
    tls: { server: tls.server, caFile: ca.caFile, requestLog: tlsLog },
  };
  const list = variants(setup, builds);
  log(`${list.length} variants x ${names.length} segments, interleaved`);
  const results = await measureAll(list, names);

  const cp = results.find((r) => r.id === "cp-sync");
  const cpRestore = results.find((r) => r.id === "cp-restore");
  const zstd = results.find((r) => r.id === "zstd-cli-3");
  for (const r of results) {
    if (r.kind === "push") {
      r.vsCp = cp ? r.medianMs / cp.medianMs : null;
      r.vsZstdCli = zstd ? r.medianMs / zstd.medianMs : null;
    } else if (r.kind === "fetch") {
      r.vsCp = cpRestore ? r.medianMs / cpRestore.medianMs : null;
    }
  }

  // The issue's target: encrypted within 1.10x of unencrypted, pushes and restores.
  const ratio = (encrypted: string, plain: string) => {
    const e = results.find((r) => r.id === encrypted);
    const p = results.find((r) => r.id === plain);
    return e && p ? e.medianMs / p.medianMs : null;
  };
  const encryptionRatios = {
    localPush: ratio("local-zstd3-age-push", "local-zstd3-push"),
    localFetch: ratio("local-zstd3-age-fetch", "local-zstd3-fetch"),
    s3Push: ratio("s3-age-push", "s3-push"),
    s3Fetch: ratio("s3-age-fetch", "s3-fetch"),
  };
  const machine = machineFacts();
  const report = {
    date: new Date().toISOString(),
    durationSec: Math.round((Date.now() - began) / 1000),
    machine: { ...machine, otherCpus },
    postgres: pgVersion,
    zstd: toolVersion(ZSTD, ["--version"]),
    s3: { kind: s3.server.kind, endpoint: s3.server.endpoint, tls: tls.server.endpoint },
    baseline: BASELINE ?? null,
    segments: { count: names.length, bytes: SEGMENT_SIZE, names },
    notes: [
      "one process per segment; wall time from spawn to exit",
      "per segment: a global sync, then every variant once (pushes, then restores), the order rotating",
      "pgha runs in a data directory with pg_wal/NAME, as PostgreSQL runs it",
      "MB/s = 16 MiB (16.78 MB) / median; ratio = raw bytes / stored bytes",
      "stored bytes: local repository = WAL object files including their header; S3 = object sizes under the prefix's wal/",
      "requests = S3 requests per process, counted by s3rver (median; `requests` lists them all)",
      "zstd CLI and cp (restore) do not fsync; cp + sync and pgha fsync the file (pgha also the directory)",
    ],
    encryptionRatios,
    results,
  };
  await writeBenchReport(OUT_FILE, report);

  const examples = results
    .filter((r) => r.exampleRequests && r.kind !== "reference")
    .map((r) => `  ${r.label} (${r.kind}): ${r.exampleRequests?.join(", ") || "none"}`);
  process.stdout.write(
    `\nWAL archive and restore: ${names.length} x 16 MiB pgbench segments, one process per segment (${machine.cpus} CPUs, node ${process.version}, ${report.zstd.replace(/^\*+\s*|\s*\*+$/g, "")}, S3 = ${s3.server.kind})\n\n` +
      `${table(results)}\n\n` +
      "cpu ms = mean user+system CPU time per run of the process and its children (S3: client side only)\n" +
      `requests = S3 requests per process (median; the first push of a data directory makes more); those of the second:\n${examples.join("\n")}\n` +
      `encrypted / unencrypted (median, target <= 1.10x): ${Object.entries(encryptionRatios)
        .map(([k, v]) => `${k} ${fixed(v, 2, "x")}`)
        .join(", ")}\n` +
      `${otherCpus !== null && otherCpus > 0.25 ? `WARNING: other processes used ${otherCpus} CPUs on average; wall times are inflated\n` : ""}` +
      `written to ${OUT_FILE}\n`,
  );
}

await runBench(main);
