/**
 * WAL archiving benchmark: `npm run bench:wal` (builds dist/, then `tsx bench/wal.ts`).
 *
 * PostgreSQL runs archive_command once per 16 MiB segment, one process at a time, so
 * what matters is the wall time of one whole process per segment. This benchmark:
 *
 *   1. makes 32 real segments with pgbench on a throwaway PostgreSQL 15 cluster;
 *   2. starts the S3 test server (test/helpers/s3-server.ts: MinIO if a container
 *      engine answers, else s3rver on 127.0.0.1);
 *   3. times, per segment and serially, one process each of:
 *        cp SRC DST && sync DST            (baseline: the classic archive_command)
 *        zstd -3 -q -f SRC -o DST          (baseline: the zstd CLI, no fsync)
 *        pgha wal-push SRC                 (local repository, zstd:3 / zstd:1 / zstd:6 / none)
 *        pgha wal-push SRC                 (S3 test server, zstd:3)
 *      plus `node -e 0` and `pgha --version` as startup reference lines;
 *   4. prints a table and writes .bench/wal.json.
 *
 * Each variant runs as one block of 32 segments (as a busy archiver would), after one
 * untimed warm-up run into a throwaway destination and a global `sync`, so that dirty
 * pages left by one variant are not flushed on another variant's clock.
 * Everything it creates (cluster, scratch dirs, repositories, server) is removed at the
 * end, also on failure or Ctrl-C; it exits non-zero on failure.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { parseWalFileName } from "../src/wal/names.js";
import { PG_BIN, PgCluster, postgresAvailable } from "../test/helpers/pg-cluster.js";
import { PGHA_BIN, REPO_ROOT } from "../test/helpers/pgha.js";
import {
  type RunningS3,
  type S3TestServer,
  s3Env,
  startS3Server,
} from "../test/helpers/s3-server.js";
import {
  CLOCK_TICKS,
  type Command,
  log,
  machineBusyMs,
  median,
  onCleanup,
  percentile,
  pghaEnv,
  runBench,
  syncAll,
  tempDir,
  timed,
  toolVersion,
} from "./common.js";

const SEGMENTS = 32;
const SEGMENT_SIZE = 16 * 1024 * 1024;
const ZSTD = "/usr/bin/zstd";
const OUT_FILE = join(REPO_ROOT, ".bench", "wal.json");

// ---------------------------------------------------------------------------------------
// Processes

function pghaPush(src: string, env: Record<string, string>): Command {
  return {
    file: PGHA_BIN,
    args: ["wal-push", src],
    env: pghaEnv({ PGHA_CLUSTER: "bench", ...env }),
  };
}

// ---------------------------------------------------------------------------------------
// Segments

async function walSegmentNames(dataDir: string): Promise<string[]> {
  const names = await readdir(join(dataDir, "pg_wal"));
  return names.filter((name) => parseWalFileName(name)?.kind === "segment").sort();
}

/** Makes SEGMENTS complete 16 MiB segments with pgbench; returns their paths in `dir`. */
async function makeSegments(dir: string): Promise<{ paths: string[]; pgVersion: string }> {
  if (!postgresAvailable()) {
    throw new Error(`PostgreSQL server binaries not found in ${PG_BIN} (set PGHA_TEST_PG_BIN)`);
  }
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
  const paths: string[] = [];
  for (const name of chosen) {
    const path = join(dir, name);
    await copyFile(join(cluster.dataDir, "pg_wal", name), path);
    await chmod(path, 0o644);
    const { size } = await stat(path);
    if (size !== SEGMENT_SIZE) throw new Error(`${name} is ${size} bytes, not ${SEGMENT_SIZE}`);
    paths.push(path);
  }
  await cluster.destroy();
  log(
    `copied ${chosen[0]} .. ${chosen[chosen.length - 1]} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  return { paths, pgVersion };
}

// ---------------------------------------------------------------------------------------
// Variants

interface Target {
  /** The process that archives `src` (segment number `i`). */
  command(src: string, i: number): Command;
  /** Bytes stored after all runs, when the variant stores anything. */
  storedBytes(): Promise<number | undefined>;
}

interface Variant {
  id: string;
  label: string;
  /** Reference lines (startup cost) are printed apart and have no stored size. */
  reference?: boolean;
  /** A fresh, empty destination. */
  target(): Promise<Target>;
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

async function s3Bytes(server: S3TestServer, prefix: string): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  let total = 0;
  let token: string | undefined;
  try {
    do {
      const out = await client.send(
        new ListObjectsV2Command({
          Bucket: server.bucket,
          Prefix: `${prefix}/`,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const item of out.Contents ?? []) {
        if (item.Key?.includes("/wal/")) total += item.Size ?? 0;
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return total;
}

function variants(s3: S3TestServer | undefined): Variant[] {
  const list: Variant[] = [
    {
      id: "node-startup",
      label: "node -e 0",
      reference: true,
      target: async () => ({
        command: () => ({ file: process.execPath, args: ["-e", "0"] }),
        storedBytes: async () => undefined,
      }),
    },
    {
      id: "pgha-version",
      label: "pgha --version",
      reference: true,
      target: async () => ({
        command: () => ({
          file: PGHA_BIN,
          args: ["--version"],
          env: pghaEnv({}),
        }),
        storedBytes: async () => undefined,
      }),
    },
    {
      id: "cp-sync",
      label: "cp + sync",
      target: async () => {
        const dir = await tempDir("pgha-bench-cp-");
        return {
          command: (src, i) => ({
            file: "/bin/sh",
            args: ["-c", 'cp "$1" "$2" && sync "$2"', "sh", src, join(dir, `seg${i}`)],
          }),
          storedBytes: () => bytesUnder(dir),
        };
      },
    },
    {
      id: "zstd-cli-3",
      label: "zstd -3 CLI",
      target: async () => {
        const dir = await tempDir("pgha-bench-zstd-");
        return {
          command: (src, i) => ({
            file: ZSTD,
            args: ["-3", "-q", "-f", src, "-o", join(dir, `seg${i}.zst`)],
          }),
          storedBytes: () => bytesUnder(dir),
        };
      },
    },
  ];
  for (const compress of ["zstd:3", "zstd:1", "zstd:6", "none"]) {
    list.push({
      id: `pgha-local-${compress.replace(":", "")}`,
      label: `pgha local ${compress}`,
      target: async () => {
        const dir = await tempDir("pgha-bench-repo-");
        return {
          command: (src) => pghaPush(src, { PGHA_REPO: dir, PGHA_COMPRESS: compress }),
          storedBytes: () => bytesUnder(dir, isWalObject),
        };
      },
    });
  }
  if (s3) {
    list.push({
      id: "pgha-s3-zstd3",
      label: `pgha S3 (${s3.kind}) zstd:3`,
      target: async () => {
        const prefix = `bench-${randomBytes(6).toString("hex")}`;
        return {
          command: (src) =>
            pghaPush(src, {
              ...s3Env(s3, prefix),
              PGHA_COMPRESS: "zstd:3",
              PGHA_RETRY_TIMEOUT: "20s",
            }),
          storedBytes: () => s3Bytes(s3, prefix),
        };
      },
    });
  }
  return list;
}

// ---------------------------------------------------------------------------------------
// Statistics and report

interface Result {
  id: string;
  label: string;
  reference: boolean;
  samplesMs: number[];
  medianMs: number;
  p90Ms: number;
  /**
   * CPUs' worth of time used by everything else on the machine while the block ran
   * (kernel work such as writeback included; for S3, the test server too).
   */
  otherCpus: number | null;
  /** Mean CPU time (user + system) per run, of the process and its children. */
  cpuMs: number | null;
  mbPerSec: number | null;
  rawBytes: number | null;
  storedBytes: number | null;
  compressionRatio: number | null;
  vsCpSync: number | null;
  vsZstdCli: number | null;
}

/**
 * CPU time (user + system, ms) of all waited-for child processes so far, from
 * /proc/self/stat (cutime, cstime); undefined where there is no /proc. Clock-tick
 * resolution, so only meaningful summed over a block of runs.
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

function selfCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function measure(variant: Variant, segments: string[]): Promise<Result> {
  const first = segments[0];
  if (first === undefined) throw new Error("no segments");
  // Warm-up into a throwaway destination: loads binaries and modules into the page cache.
  const warm = await variant.target();
  await timed(warm.command(first, 0));
  await syncAll();

  const target = await variant.target();
  const samplesMs: number[] = [];
  const cpuBefore = childCpuMs();
  const selfBefore = selfCpuMs();
  const busyBefore = machineBusyMs();
  const blockStart = process.hrtime.bigint();
  for (const [i, src] of segments.entries()) samplesMs.push(await timed(target.command(src, i)));
  const blockMs = Number(process.hrtime.bigint() - blockStart) / 1e6;
  const busyAfter = machineBusyMs();
  const cpuAfter = childCpuMs();
  const ownMs =
    cpuBefore === undefined || cpuAfter === undefined
      ? undefined
      : cpuAfter - cpuBefore + selfCpuMs() - selfBefore;
  const otherCpus =
    busyBefore === undefined || busyAfter === undefined || ownMs === undefined
      ? null
      : Math.max(0, (busyAfter - busyBefore - ownMs) / blockMs);
  const stored = await target.storedBytes();
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const medianMs = median(sorted);
  const rawBytes = variant.reference ? null : segments.length * SEGMENT_SIZE;
  const result: Result = {
    id: variant.id,
    label: variant.label,
    reference: variant.reference === true,
    samplesMs: samplesMs.map((ms) => Math.round(ms * 100) / 100),
    medianMs,
    p90Ms: percentile(sorted, 90),
    otherCpus: otherCpus === null ? null : Math.round(otherCpus * 100) / 100,
    cpuMs:
      cpuBefore === undefined || cpuAfter === undefined
        ? null
        : (cpuAfter - cpuBefore) / segments.length,
    mbPerSec: variant.reference ? null : SEGMENT_SIZE / 1e6 / (medianMs / 1000),
    rawBytes,
    storedBytes: stored ?? null,
    compressionRatio: stored && rawBytes ? rawBytes / stored : null,
    vsCpSync: null,
    vsZstdCli: null,
  };
  log(
    `${variant.label}: median ${medianMs.toFixed(1)} ms, p90 ${result.p90Ms.toFixed(1)} ms (other CPU use ${result.otherCpus ?? "?"})`,
  );
  return result;
}

function table(results: Result[]): string {
  const header = [
    "variant",
    "median ms",
    "p90 ms",
    "cpu ms",
    "other",
    "MB/s",
    "ratio",
    "vs cp+sync",
    "vs zstd -3",
  ];
  const fixed = (n: number | null, digits: number, suffix = "") =>
    n === null ? "-" : `${n.toFixed(digits)}${suffix}`;
  const rows = results.map((r) => [
    r.label,
    fixed(r.medianMs, 1),
    fixed(r.p90Ms, 1),
    fixed(r.cpuMs, 0),
    fixed(r.otherCpus, 2),
    fixed(r.mbPerSec, 0),
    fixed(r.compressionRatio, 2),
    fixed(r.vsCpSync, 2, "x"),
    fixed(r.vsZstdCli, 2, "x"),
  ]);
  const widths = header.map((h, c) =>
    Math.max(h.length, ...rows.map((row) => (row[c] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  const main = results.filter((r) => !r.reference);
  const refs = results.filter((r) => r.reference);
  return [
    line(header),
    rule,
    ...main.map((r) => line(rows[results.indexOf(r)] ?? [])),
    rule,
    ...refs.map((r) => line(rows[results.indexOf(r)] ?? [])),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const began = Date.now();
  const scratch = await tempDir("pgha-bench-wal-", 0o755);
  const { paths: segments, pgVersion } = await makeSegments(scratch);

  let s3: RunningS3 | undefined;
  try {
    s3 = await startS3Server(log);
    const stop = s3.stop;
    onCleanup("S3 test server", () => stop());
    log(`S3 test server: ${s3.server.kind} at ${s3.server.endpoint}`);
  } catch (error) {
    throw new Error(`cannot start the S3 test server: ${(error as Error).message}`);
  }

  const results: Result[] = [];
  for (const variant of variants(s3.server)) {
    log(`${variant.label}: ${variant.reference ? "" : `${segments.length} segments`}`.trim());
    results.push(await measure(variant, segments));
  }
  const cp = results.find((r) => r.id === "cp-sync");
  const zstd = results.find((r) => r.id === "zstd-cli-3");
  for (const r of results) {
    if (r.reference) continue;
    r.vsCpSync = cp ? r.medianMs / cp.medianMs : null;
    r.vsZstdCli = zstd ? r.medianMs / zstd.medianMs : null;
  }

  const cpu = cpus();
  const report = {
    date: new Date().toISOString(),
    durationSec: Math.round((Date.now() - began) / 1000),
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    postgres: pgVersion,
    zstd: toolVersion(ZSTD, ["--version"]),
    s3: { kind: s3.server.kind, endpoint: s3.server.endpoint },
    segments: {
      count: segments.length,
      bytes: SEGMENT_SIZE,
      names: segments.map((p) => p.slice(-24)),
    },
    notes: [
      "one process per segment, serially; wall time from spawn to exit",
      "each variant: one untimed warm-up run, a global sync, then all segments in a row",
      "MB/s = 16 MiB (16.78 MB) / median; ratio = raw bytes / stored bytes",
      "stored bytes: local repository = WAL object files including their header line; S3 = object sizes under the prefix's wal/",
      "zstd CLI does not fsync; cp + sync and pgha local fsync the file (pgha also the directory)",
    ],
    results,
  };
  await mkdir(join(REPO_ROOT, ".bench"), { recursive: true });
  await writeFile(OUT_FILE, `${JSON.stringify(report, null, 2)}\n`);

  process.stdout.write(
    `\nWAL archiving: ${segments.length} x 16 MiB pgbench segments, one process per segment (${cpu.length} CPUs, node ${process.version}, ${report.zstd.replace(/^\*+\s*|\s*\*+$/g, "")}, S3 = ${s3.server.kind})\n\n`,
  );
  const others = results.map((r) => r.otherCpus ?? 0);
  const busy = Math.max(...others) > 0.25;
  process.stdout.write(
    `${table(results)}\n\ncpu ms = mean user+system CPU time per run of the process and its children (S3: client side only)\n` +
      `other = CPUs' worth of time used by other processes during the block (S3: includes the test server)` +
      `${busy ? "\nWARNING: other processes competed for the CPUs during some blocks; their wall times are inflated" : ""}\n` +
      `written to ${OUT_FILE}\n`,
  );
}

await runBench(main);
