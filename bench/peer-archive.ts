/**
 * Section "archive": every tool archives the N segments, queued as a busy server leaves
 * them (all .ready), one archive_command per segment; rounds interleave the tools. It
 * records each command's wall time and the time until the repository holds every
 * segment (the throughput of an asynchronous tool), and the stored bytes.
 */
import { fixed, log, renderTable, syncAll } from "./common.js";
import { type BenchMaterial, SEGMENT_SIZE } from "./peer-cluster.js";
import { interleaveRounds, MiB, meanOf, medianOf, p90Of, ratio, tenths } from "./peer-report.js";
import { archiveSegments } from "./peer-runner.js";
import type { Endpoint } from "./peer-s3.js";
import { type ToolColumns, toolColumns, type WalTool } from "./peer-tools.js";

export interface ArchiveRow extends ToolColumns {
  endpoint: Endpoint["id"];
  endpointLabel: string;
  segments: number;
  rounds: { returnedMs: number; storedMs: number; storedBytes: number }[];
  samplesMs: number[];
  /** Median / p90 / mean wall time of one archive_command. */
  medianMs: number;
  p90Ms: number;
  meanMs: number;
  /** Median over rounds of the time until every segment was stored. */
  storedMs: number;
  /** N x 16 MiB / storedMs. */
  mibPerSec: number;
  storedBytes: number;
  /** Per-segment median against pgBackRest sync (time ratio: lower is better). */
  segmentVsPgbrSync: number | null;
  /** Throughput against pgBackRest async and against the floor (higher is better). */
  throughputVsPgbrAsync: number | null;
  throughputVsFloor: number | null;
  storedVsPgbrAsync: number | null;
}

export interface SectionPlan {
  endpoint: Endpoint;
  rounds: number;
  /** How many of the segments: a run of consecutive ones from the middle of the set. */
  segments: number;
}

/**
 * `count` consecutive segments from the middle of the set (consecutive, so that a
 * prefetcher's guesses hold; from the middle, so that they mix the set's pgbench -i and
 * pgbench -T parts as the whole set does).
 */
export function planSegments(all: string[], count: number): string[] {
  const start = Math.max(0, Math.floor((all.length - count) / 2));
  return all.slice(start, start + count);
}

export async function runArchiveSection(
  tools: WalTool[],
  plans: SectionPlan[],
  material: BenchMaterial,
  stage: string,
): Promise<ArchiveRow[]> {
  const archiving = tools.filter((t) => t.archives);
  // Warm-up: one segment each (binaries and modules into the page cache, stanzas made).
  for (const tool of archiving) {
    const endpoint = plans[0]?.endpoint;
    if (!endpoint) return [];
    const run = await tool.open({ endpoint, pgdata: stage, repo: "fresh" });
    await archiveSegments(stage, material, material.segments.slice(0, 1), run);
    await run.close();
  }
  const rows: ArchiveRow[] = [];
  for (const plan of plans) {
    const names = planSegments(material.segments, plan.segments);
    // The floor does not talk to S3: it runs on loopback only.
    const here = archiving.filter((t) => t.family !== "floor" || plan.endpoint.id === "loopback");
    const byTool = await interleaveRounds(here, plan.rounds, async (tool, round) => {
      const run = await tool.open({ endpoint: plan.endpoint, pgdata: stage, repo: "fresh" });
      await syncAll();
      const result = await archiveSegments(stage, material, names, run);
      await run.close();
      log(
        `archive ${plan.endpoint.label} round ${round + 1} ${tool.label}: median ${medianOf(result.samplesMs).toFixed(1)} ms/segment, all stored after ${(result.storedMs / 1000).toFixed(2)} s, ${(result.storedBytes / 1e6).toFixed(1)} MB`,
      );
      return result;
    });
    for (const [tool, results] of byTool) {
      const rounds = results.map((result) => ({
        returnedMs: Math.round(result.returnedMs),
        storedMs: Math.round(result.storedMs),
        storedBytes: result.storedBytes,
      }));
      const samplesMs = results.flatMap((result) => result.samplesMs.map(tenths));
      const storedMs = medianOf(rounds.map((r) => r.storedMs));
      rows.push({
        ...toolColumns(tool, "archive"),
        endpoint: plan.endpoint.id,
        endpointLabel: plan.endpoint.label,
        segments: names.length,
        rounds,
        samplesMs,
        medianMs: medianOf(samplesMs),
        p90Ms: p90Of(samplesMs),
        meanMs: meanOf(samplesMs),
        storedMs,
        mibPerSec: (names.length * SEGMENT_SIZE) / MiB / (storedMs / 1000),
        storedBytes: medianOf(rounds.map((r) => r.storedBytes)),
        segmentVsPgbrSync: null,
        throughputVsPgbrAsync: null,
        throughputVsFloor: null,
        storedVsPgbrAsync: null,
      });
    }
  }
  for (const row of rows) {
    const { sync, async, floor } = referenceRows(rows, row.endpoint);
    row.segmentVsPgbrSync = ratio(row.medianMs, sync?.medianMs);
    row.throughputVsPgbrAsync = ratio(row.mibPerSec, async?.mibPerSec);
    row.throughputVsFloor = ratio(row.mibPerSec, floor?.mibPerSec);
    row.storedVsPgbrAsync =
      row.family === "floor" ? null : ratio(row.storedBytes, async?.storedBytes);
  }
  return rows;
}

/**
 * What a row of the archive or restore section is compared with: pgBackRest sync and
 * async on the same endpoint, and the floor (on loopback).
 */
export function referenceRows<R extends { tool: string; endpoint: Endpoint["id"] }>(
  rows: R[],
  endpoint: Endpoint["id"],
): { sync: R | undefined; async: R | undefined; floor: R | undefined } {
  const find = (id: string, at: Endpoint["id"]) =>
    rows.find((r) => r.tool === id && r.endpoint === at);
  return {
    sync: find("pgbackrest", endpoint),
    async: find("pgbackrest-async", endpoint),
    floor: find("floor", "loopback"),
  };
}

export function renderArchive(rows: ArchiveRow[]): string {
  const header = [
    "tool",
    "S3",
    "segs x rounds",
    "cmd median ms",
    "p90 ms",
    "all stored s",
    "MiB/s",
    "stored MB",
    "seg x pgbr sync",
    "MiB/s x pgbr async",
    "MiB/s x floor",
    "stored x pgbr",
  ];
  const body = rows.map((r) => [
    r.label,
    r.family === "floor" ? "-" : r.endpointLabel,
    `${r.segments} x ${r.rounds.length}`,
    fixed(r.medianMs, 1),
    fixed(r.p90Ms, 1),
    fixed(r.storedMs / 1000, 2),
    fixed(r.mibPerSec, 1),
    fixed(r.storedBytes / 1e6, 1),
    fixed(r.segmentVsPgbrSync, 2, "x"),
    fixed(r.throughputVsPgbrAsync, 2, "x"),
    fixed(r.throughputVsFloor, 2, "x"),
    fixed(r.storedVsPgbrAsync, 3, "x"),
  ]);
  return [
    "archive_command: the segments queued (.ready), one process per segment in order, medians over rounds",
    renderTable(header, body),
    "cmd = wall time of one archive_command (an async tool returns once its spool says stored); all stored = first start until the repository lists every segment; MiB/s from it",
  ].join("\n");
}
