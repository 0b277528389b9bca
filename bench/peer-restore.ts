/**
 * Section "restore": every tool fetches the N segments in order, one restore_command per
 * segment into pg_wal/RECOVERYXLOG (as the server asks during recovery), from a shared
 * repository filled once beforehand; rounds interleave the tools. A prefetching tool's
 * cost moves to its first calls, so the per-segment mean (total / N) is what compares.
 */
import { fixed, log, renderTable, syncAll } from "./common.js";
import { planSegments, referenceRows, type SectionPlan } from "./peer-archive.js";
import type { BenchMaterial } from "./peer-cluster.js";
import { interleaveRounds, medianOf, p90Of, ratio, tenths } from "./peer-report.js";
import { archiveSegments, restoreSegments } from "./peer-runner.js";
import type { Endpoint } from "./peer-s3.js";
import { type ToolColumns, toolColumns, type WalTool } from "./peer-tools.js";

export interface RestoreRow extends ToolColumns {
  endpoint: Endpoint["id"];
  endpointLabel: string;
  segments: number;
  /** Sum of the command times of each round. */
  roundsTotalMs: number[];
  samplesMs: number[];
  medianMs: number;
  p90Ms: number;
  /** Total / N: the per-segment cost including a prefetcher's first calls. */
  meanMs: number;
  medianVsPgbrSync: number | null;
  meanVsPgbrSync: number | null;
  meanVsPgbrAsync: number | null;
  meanVsFloor: number | null;
}

const filled = new Set<string>(["floor"]);

/** Pushes the N segments once into each read repository the restoring tools use (untimed). */
export async function ensureReadRepositories(
  tools: WalTool[],
  material: BenchMaterial,
  stage: string,
  loopback: Endpoint,
): Promise<void> {
  for (const tool of tools.filter((t) => t.restores)) {
    if (filled.has(tool.readRepository)) continue;
    const filler = tools.find(
      (t) => t.readRepository === tool.readRepository && t.archives && !t.asyncArchive,
    );
    if (!filler) throw new Error(`nothing fills ${tool.readRepository} (no synchronous archiver)`);
    log(`filling ${tool.readRepository} with ${filler.label}`);
    const run = await filler.open({ endpoint: loopback, pgdata: stage, repo: "read" });
    await archiveSegments(stage, material, material.segments, run);
    await run.close({ keepRepository: true });
    filled.add(tool.readRepository);
  }
}

export async function runRestoreSection(
  tools: WalTool[],
  plans: SectionPlan[],
  material: BenchMaterial,
  stage: string,
): Promise<RestoreRow[]> {
  const restoring = tools.filter((t) => t.restores);
  const rows: RestoreRow[] = [];
  for (const plan of plans) {
    const names = planSegments(material.segments, plan.segments);
    const here = restoring.filter((t) => t.family !== "floor" || plan.endpoint.id === "loopback");
    const byTool = await interleaveRounds(here, plan.rounds, async (tool, round) => {
      const run = await tool.open({ endpoint: plan.endpoint, pgdata: stage, repo: "read" });
      await syncAll();
      const { samplesMs } = await restoreSegments(stage, material, names, run);
      await run.close({ keepRepository: true });
      const total = samplesMs.reduce((sum, ms) => sum + ms, 0);
      log(
        `restore ${plan.endpoint.label} round ${round + 1} ${tool.label}: median ${medianOf(samplesMs).toFixed(1)} ms, mean ${(total / names.length).toFixed(1)} ms/segment`,
      );
      return { samplesMs, total };
    });
    for (const [tool, results] of byTool) {
      const totals = results.map((result) => Math.round(result.total));
      const samplesMs = results.flatMap((result) => result.samplesMs.map(tenths));
      rows.push({
        ...toolColumns(tool, "restore"),
        endpoint: plan.endpoint.id,
        endpointLabel: plan.endpoint.label,
        segments: names.length,
        roundsTotalMs: totals,
        samplesMs,
        medianMs: medianOf(samplesMs),
        p90Ms: p90Of(samplesMs),
        meanMs: medianOf(totals) / names.length,
        medianVsPgbrSync: null,
        meanVsPgbrSync: null,
        meanVsPgbrAsync: null,
        meanVsFloor: null,
      });
    }
  }
  for (const row of rows) {
    const { sync, async, floor } = referenceRows(rows, row.endpoint);
    row.medianVsPgbrSync = ratio(row.medianMs, sync?.medianMs);
    row.meanVsPgbrSync = ratio(row.meanMs, sync?.meanMs);
    row.meanVsPgbrAsync = ratio(row.meanMs, async?.meanMs);
    row.meanVsFloor = ratio(row.meanMs, floor?.meanMs);
  }
  return rows;
}

export function renderRestore(rows: RestoreRow[]): string {
  const header = [
    "tool",
    "S3",
    "segs x rounds",
    "median ms",
    "p90 ms",
    "mean ms",
    "median x pgbr sync",
    "mean x pgbr sync",
    "mean x pgbr async",
    "mean x floor",
  ];
  const body = rows.map((r) => [
    r.label,
    r.family === "floor" ? "-" : r.endpointLabel,
    `${r.segments} x ${r.roundsTotalMs.length}`,
    fixed(r.medianMs, 1),
    fixed(r.p90Ms, 1),
    fixed(r.meanMs, 1),
    fixed(r.medianVsPgbrSync, 2, "x"),
    fixed(r.meanVsPgbrSync, 2, "x"),
    fixed(r.meanVsPgbrAsync, 2, "x"),
    fixed(r.meanVsFloor, 2, "x"),
  ]);
  return [
    "restore_command: the segments in order into pg_wal/RECOVERYXLOG, one process per segment",
    renderTable(header, body),
    "mean = median over rounds of (sum of command times) / N: includes a prefetcher's first, slow calls (time ratios: lower is better)",
  ].join("\n");
}
