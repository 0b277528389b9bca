/**
 * Section "recovery": the plain base backup taken just before the N segments is copied
 * (untimed), given restore_command = each tool (cp from a local directory holding the
 * same segments is the floor) and recovery.signal, and started; the clock runs from
 * pg_ctl start until the server is consistent (pg_ctl -w returns) and until it has
 * replayed every segment and promoted ("ready to accept connections" in its log).
 */
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PgCluster, serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { fixed, log, onCleanup, renderTable, runProcess, sleep, syncAll } from "./common.js";
import { type BenchMaterial, confString, giveToServer } from "./peer-cluster.js";
import { interleaveRounds, medianOf, ratio } from "./peer-report.js";
import type { Endpoint } from "./peer-s3.js";
import { type ToolColumns, toolColumns, type WalTool } from "./peer-tools.js";

export interface RecoveryRow extends ToolColumns {
  rounds: { consistentMs: number; promotedMs: number }[];
  consistentMs: number;
  promotedMs: number;
  vsFloor: number | null;
  vsPgbrSync: number | null;
  vsPgbrAsync: number | null;
}

const TIMEOUT_MS = 900_000;

async function recoverOnce(
  tool: WalTool,
  material: BenchMaterial,
  endpoint: Endpoint,
): Promise<{ consistentMs: number; promotedMs: number }> {
  const dir = await serverOwnedTempDir("pgha-bench-recovery-");
  const dataDir = join(dir, "data");
  const copy = await runProcess({
    file: "cp",
    args: ["-a", material.baseDir, dataDir],
    asServerUser: true,
  });
  if (copy.code !== 0) throw new Error(`cp -a of the base backup: ${copy.stderr}`);
  for (const name of await readdir(join(dataDir, "pg_wal"))) {
    if (/^[0-9A-F]{24}$/.test(name)) throw new Error(`the base backup holds WAL ${name}`);
  }
  const run = await tool.open({ endpoint, pgdata: dataDir, repo: "read" });
  const cluster = await PgCluster.adopt(dataDir, {
    conf: [
      `restore_command = ${confString(run.restoreCommand)}`,
      "archive_mode = off",
      "recovery_target_timeline = 'latest'",
      "hot_standby = on",
    ],
  });
  cluster.removeAlso.push(dir);
  onCleanup(`recovery cluster ${dataDir}`, () => cluster.destroy());
  const signal = join(dataDir, "recovery.signal");
  await writeFile(signal, "");
  await giveToServer(signal);
  await syncAll();

  const start = Date.now();
  await cluster.start();
  const consistentMs = Date.now() - start;
  let promotedMs = 0;
  for (;;) {
    const text = await cluster.serverLog();
    if (/database system is ready to accept connections/.test(text)) {
      promotedMs = Date.now() - start;
      break;
    }
    const failed = /PANIC|startup process \(PID \d+\) exited with exit code [1-9]/.test(text);
    if (failed || Date.now() - start > TIMEOUT_MS) {
      throw new Error(`recovery with ${tool.label} did not finish:\n${text.slice(-3000)}`);
    }
    await sleep(50);
  }
  // Every segment came through restore_command, and the server is out of recovery.
  const text = await cluster.serverLog();
  const restored = new Set(
    [...text.matchAll(/restored log file "([0-9A-F]{24})"/g)].map((m) => m[1]),
  );
  const missing = material.segments.filter((name) => !restored.has(name));
  if (missing.length > 0) {
    throw new Error(
      `recovery with ${tool.label} did not restore ${missing.length} segments, e.g. ${missing[0]}`,
    );
  }
  if ((await cluster.sql("SELECT pg_is_in_recovery()")) !== "f")
    throw new Error("still in recovery");
  await cluster.destroy();
  await run.close({ keepRepository: true });
  return { consistentMs, promotedMs };
}

export async function runRecoverySection(
  tools: WalTool[],
  rounds: number,
  material: BenchMaterial,
  loopback: Endpoint,
): Promise<RecoveryRow[]> {
  const restoring = tools.filter((t) => t.restores);
  const byTool = await interleaveRounds(restoring, rounds, async (tool, round) => {
    const result = await recoverOnce(tool, material, loopback);
    log(
      `recovery round ${round + 1} ${tool.label}: consistent after ${(result.consistentMs / 1000).toFixed(2)} s, promoted after ${(result.promotedMs / 1000).toFixed(2)} s`,
    );
    return result;
  });
  const rows: RecoveryRow[] = restoring.map((tool) => {
    const done = byTool.get(tool) ?? [];
    return {
      ...toolColumns(tool, "restore"),
      rounds: done,
      consistentMs: medianOf(done.map((r) => r.consistentMs)),
      promotedMs: medianOf(done.map((r) => r.promotedMs)),
      vsFloor: null,
      vsPgbrSync: null,
      vsPgbrAsync: null,
    };
  });
  const find = (id: string) => rows.find((r) => r.tool === id);
  for (const row of rows) {
    row.vsFloor = ratio(row.promotedMs, find("floor")?.promotedMs);
    row.vsPgbrSync = ratio(row.promotedMs, find("pgbackrest")?.promotedMs);
    row.vsPgbrAsync = ratio(row.promotedMs, find("pgbackrest-async")?.promotedMs);
  }
  return rows;
}

export function renderRecovery(rows: RecoveryRow[], segments: number): string {
  const header = [
    "restore_command",
    "consistent s",
    "promoted s",
    "x floor",
    "x pgbr sync",
    "x pgbr async",
  ];
  const body = rows.map((r) => [
    r.label,
    fixed(r.consistentMs / 1000, 2),
    fixed(r.promotedMs / 1000, 2),
    fixed(r.vsFloor, 2, "x"),
    fixed(r.vsPgbrSync, 2, "x"),
    fixed(r.vsPgbrAsync, 2, "x"),
  ]);
  return [
    `recovery: base backup + ${segments} segments, from pg_ctl start to consistent and to promoted (all replayed), loopback`,
    renderTable(header, body),
  ].join("\n");
}
