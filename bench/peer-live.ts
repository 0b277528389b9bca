/**
 * Section "live": a fresh PostgreSQL cluster per tool with archive_command set to it
 * (cp + sync into a directory is the floor) takes a bulk insert from pgbench for
 * BENCH_LIVE_SECONDS, throttled (--rate) to about BENCH_LIVE_WAL_MIBS of WAL per second
 * (calibrated once, the same rate for every tool). Recorded: tps, WAL rate, the most
 * .ready files seen (segments waiting), their count when the load stops, the time to
 * drain them, and the safety check: every segment the server has marked .done is
 * already listed in the tool's repository when the bench sees the .done.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { PgCluster } from "../test/helpers/pg-cluster.js";
import { fixed, log, onCleanup, renderTable, sleep } from "./common.js";
import { confString } from "./peer-cluster.js";
import { interleaveRounds, MiB, medianOf, ratio } from "./peer-report.js";
import type { Endpoint } from "./peer-s3.js";
import { type ToolColumns, type ToolRun, toolColumns, type WalTool } from "./peer-tools.js";

/** One transaction of the load: 2000 rows of about 300 bytes. */
const BULK_SQL =
  "INSERT INTO bulk SELECT g, now(), random() * 1e9, md5(g::text) || repeat(md5(random()::text), 7) FROM generate_series(1, 2000) g;\n";
const DRAIN_TIMEOUT_MS = 180_000;

export interface LiveRound {
  tps: number;
  walMiBs: number;
  maxReady: number;
  readyAtEnd: number;
  /** Time from the end of the load until nothing waited; null when it did not drain in time. */
  drainMs: number | null;
  /** .done files checked against the repository, and those it did not list yet. */
  doneChecked: number;
  violations: string[];
}

/** A tool's rounds, summarized: medians, the most waiting, sums of the checks. */
export interface LiveRow extends ToolColumns, Omit<LiveRound, "violations"> {
  rounds: LiveRound[];
  violations: number;
  tpsVsFloor: number | null;
}

interface Watch {
  maxReady: number;
  checked: Set<string>;
  violations: string[];
}

/** One look at archive_status: counts .ready, checks new .done against the repository. */
async function look(dataDir: string, run: ToolRun, watch: Watch): Promise<number> {
  const names = await readdir(join(dataDir, "pg_wal", "archive_status")).catch(
    () => [] as string[],
  );
  const ready = names.filter((n) => n.endsWith(".ready")).length;
  watch.maxReady = Math.max(watch.maxReady, ready);
  const fresh = names
    .filter((n) => n.endsWith(".done") && /^[0-9A-F]{24}\.done$/.test(n))
    .map((n) => n.slice(0, 24))
    .filter((n) => !watch.checked.has(n));
  if (fresh.length > 0) {
    const stored = await run.stored();
    for (const name of fresh) {
      watch.checked.add(name);
      if (!stored.has(name)) watch.violations.push(name);
    }
  }
  return ready;
}

async function walBytes(cluster: PgCluster): Promise<number> {
  return Number(await cluster.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"));
}

async function liveOnce(
  tool: WalTool,
  endpoint: Endpoint,
  seconds: number,
  rate: { tps: number | undefined; walMiBs: number },
): Promise<LiveRound> {
  const cluster = await PgCluster.init({
    conf: ["archive_mode = on", "max_wal_size = '16GB'", "checkpoint_timeout = '30min'"],
  });
  onCleanup("live cluster", () => cluster.destroy());
  const run = await tool.open({ endpoint, pgdata: cluster.dataDir, repo: "fresh" });
  await cluster.appendConf([`archive_command = ${confString(run.archiveCommand)}`]);
  await cluster.start();
  await cluster.sql("CREATE TABLE bulk (id bigint, at timestamptz, n double precision, pad text)");
  const script = await cluster.writeFile("bulk.sql", BULK_SQL);
  const pgbench = (args: string[]) =>
    cluster.bin("pgbench", [...cluster.connArgs(), "-n", ...args, "-f", script, "postgres"]);
  if (rate.tps === undefined && rate.walMiBs > 0) {
    const before = await walBytes(cluster);
    await pgbench(["-t", "10"]);
    const perTransaction = ((await walBytes(cluster)) - before) / 10;
    rate.tps = Math.max(1, Math.round((rate.walMiBs * MiB) / perTransaction));
    log(
      `live: ${(perTransaction / 1e6).toFixed(2)} MB of WAL per transaction: --rate ${rate.tps} for ~${rate.walMiBs} MiB/s`,
    );
  }
  const watch: Watch = { maxReady: 0, checked: new Set(), violations: [] };
  const walBefore = await walBytes(cluster);
  const started = Date.now();
  let finished = false;
  const load = pgbench([
    "-c",
    "2",
    "-j",
    "2",
    "-T",
    String(seconds),
    ...(rate.tps ? ["-R", String(rate.tps)] : []),
  ]).finally(() => {
    finished = true;
  });
  while (!finished) {
    await look(cluster.dataDir, run, watch);
    await sleep(200);
  }
  const { stdout } = await load;
  const readyAtEnd = await look(cluster.dataDir, run, watch);
  const elapsed = (Date.now() - started) / 1000;
  const walMiBs = ((await walBytes(cluster)) - walBefore) / MiB / elapsed;
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN);
  const drainStart = Date.now();
  let drainMs: number | null = null;
  while (Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
    if ((await look(cluster.dataDir, run, watch)) === 0) {
      drainMs = Date.now() - drainStart;
      break;
    }
    await sleep(200);
  }
  await cluster.destroy();
  await run.close();
  return {
    tps,
    walMiBs,
    maxReady: watch.maxReady,
    readyAtEnd,
    drainMs,
    doneChecked: watch.checked.size,
    violations: watch.violations,
  };
}

export async function runLiveSection(
  tools: WalTool[],
  rounds: number,
  seconds: number,
  walMiBs: number,
  loopback: Endpoint,
): Promise<{ rows: LiveRow[]; rateTps: number | null }> {
  const archiving = tools.filter((t) => t.archives);
  // The floor first: it calibrates the rate every tool then gets.
  const rate: { tps: number | undefined; walMiBs: number } = { tps: undefined, walMiBs };
  const byTool = await interleaveRounds(archiving, rounds, async (tool, round) => {
    const result = await liveOnce(tool, loopback, seconds, rate);
    log(
      `live round ${round + 1} ${tool.label}: ${result.tps.toFixed(1)} tps, ${result.walMiBs.toFixed(1)} MiB/s of WAL, at most ${result.maxReady} waiting, ${result.readyAtEnd} at the end, drained in ${result.drainMs === null ? "(not drained)" : `${(result.drainMs / 1000).toFixed(1)} s`}, ${result.doneChecked} .done checked, ${result.violations.length} not stored`,
    );
    return result;
  });
  const rows = archiving.map((tool): LiveRow => {
    const done = byTool.get(tool) ?? [];
    const drains = done.map((r) => r.drainMs);
    return {
      ...toolColumns(tool, "archive"),
      rounds: done,
      tps: medianOf(done.map((r) => r.tps)),
      walMiBs: medianOf(done.map((r) => r.walMiBs)),
      maxReady: Math.max(...done.map((r) => r.maxReady)),
      readyAtEnd: Math.max(...done.map((r) => r.readyAtEnd)),
      drainMs: drains.includes(null) ? null : medianOf(drains.map((d) => d ?? 0)),
      doneChecked: done.reduce((sum, r) => sum + r.doneChecked, 0),
      violations: done.reduce((sum, r) => sum + r.violations.length, 0),
      tpsVsFloor: null,
    };
  });
  const floor = rows.find((r) => r.family === "floor");
  for (const row of rows) row.tpsVsFloor = ratio(row.tps, floor?.tps);
  return { rows, rateTps: rate.tps ?? null };
}

export function renderLive(
  rows: LiveRow[],
  seconds: number,
  walMiBs: number,
  rateTps: number | null,
): string {
  const header = [
    "archive_command",
    "tps",
    "WAL MiB/s",
    "x floor tps",
    "most waiting",
    "waiting at end",
    "drain s",
    ".done checked",
    "not stored",
  ];
  const body = rows.map((r) => [
    r.label,
    fixed(r.tps, 1),
    fixed(r.walMiBs, 1),
    fixed(r.tpsVsFloor, 2, "x"),
    String(r.maxReady),
    String(r.readyAtEnd),
    r.drainMs === null ? "> 180" : fixed(r.drainMs / 1000, 1),
    String(r.doneChecked),
    String(r.violations),
  ]);
  return [
    `live bulk insert: pgbench -c 2 -T ${seconds}${rateTps ? ` --rate ${rateTps} (~${walMiBs} MiB/s of WAL)` : " (unthrottled)"}, a fresh cluster per tool, S3 loopback`,
    renderTable(header, body),
    "waiting = .ready files in pg_wal/archive_status; not stored = .done seen while the repository did not list the segment",
  ].join("\n");
}
