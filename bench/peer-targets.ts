/**
 * The targets pgha is to meet against pgBackRest (issue 11), evaluated on one run's
 * results. A target about an asynchronous archiver or a prefetching restore uses the
 * pgha variant marked so; until one exists it reports today's plain variant, noted.
 */
import type { ArchiveRow } from "./peer-archive.js";
import type { BackupRow } from "./peer-backup.js";
import type { LiveRow } from "./peer-live.js";
import type { RecoveryRow } from "./peer-recovery.js";
import { type Target, target } from "./peer-report.js";
import type { RestoreRow } from "./peer-restore.js";
import type { WalTool } from "./peer-tools.js";

export interface PeerResults {
  archive?: ArchiveRow[];
  restore?: RestoreRow[];
  recovery?: RecoveryRow[];
  backup?: BackupRow[];
  live?: LiveRow[];
}

const RSS_LIMIT_MB = 256;

/** The pgha tool for a target: the first one with `want`, else the first plain one. */
function pick(
  tools: WalTool[],
  use: "archives" | "restores",
  async: boolean,
): { tool?: WalTool; note?: string } {
  const pgha = tools.filter((t) => t.family === "pgha" && t[use]);
  const exact = pgha.find((t) => (use === "archives" ? t.asyncArchive : t.prefetch) === async);
  if (exact) return { tool: exact };
  const fallback = pgha[0];
  return fallback
    ? {
        tool: fallback,
        note: `no ${async ? (use === "archives" ? "async" : "prefetch") : "plain"} variant yet: ${fallback.label}`,
      }
    : {};
}

export function evaluateTargets(results: PeerResults, tools: WalTool[]): Target[] {
  const targets: Target[] = [];
  const asyncArchiver = pick(tools, "archives", true);
  const syncArchiver = pick(tools, "archives", false);
  const prefetcher = pick(tools, "restores", true);
  const archiveRow = (id: string | undefined, endpoint: string) =>
    results.archive?.find((r) => r.tool === id && r.endpoint === endpoint);
  const label = (p: { tool?: WalTool }) => p.tool?.label ?? "none";

  targets.push(
    target({
      name: "async archive throughput vs pgBackRest async, loopback",
      variant: label(asyncArchiver),
      value: archiveRow(asyncArchiver.tool?.id, "loopback")?.throughputVsPgbrAsync ?? null,
      op: ">=",
      limit: 1.4,
      unit: "x",
      ...(asyncArchiver.note ? { note: asyncArchiver.note } : {}),
    }),
    target({
      name: "async archive throughput vs pgBackRest async, +latency",
      variant: label(asyncArchiver),
      value: archiveRow(asyncArchiver.tool?.id, "latency")?.throughputVsPgbrAsync ?? null,
      op: ">=",
      limit: 2,
      unit: "x",
      ...(asyncArchiver.note ? { note: asyncArchiver.note } : {}),
    }),
    target({
      name: "stored bytes vs pgBackRest (zstd 3)",
      variant: label(asyncArchiver),
      value: archiveRow(asyncArchiver.tool?.id, "loopback")?.storedVsPgbrAsync ?? null,
      op: "<=",
      limit: 1.05,
      unit: "x",
    }),
    target({
      name: "sync archive per segment (median) vs pgBackRest sync, loopback",
      variant: label(syncArchiver),
      value: archiveRow(syncArchiver.tool?.id, "loopback")?.segmentVsPgbrSync ?? null,
      op: "<=",
      limit: 1.0,
      unit: "x",
    }),
  );

  const restoreRow = results.restore?.find(
    (r) => r.tool === prefetcher.tool?.id && r.endpoint === "loopback",
  );
  targets.push(
    target({
      name: "restore_command per segment (mean) vs pgBackRest async, loopback",
      variant: label(prefetcher),
      value: restoreRow?.meanVsPgbrAsync ?? null,
      op: "<=",
      limit: 1.0,
      unit: "x",
      ...(prefetcher.note ? { note: prefetcher.note } : {}),
    }),
  );
  const recoveryRow = results.recovery?.find((r) => r.tool === prefetcher.tool?.id);
  targets.push(
    target({
      name: "recovery end to end vs cp as restore_command",
      variant: label(prefetcher),
      value: recoveryRow?.vsFloor ?? null,
      op: "<=",
      limit: 1.3,
      unit: "x",
      ...(prefetcher.note ? { note: prefetcher.note } : {}),
    }),
  );

  const liveRow = results.live?.find((r) => r.tool === asyncArchiver.tool?.id);
  targets.push(
    target({
      name: "live bulk insert: tps vs cp as archive_command",
      variant: label(asyncArchiver),
      value: liveRow?.tpsVsFloor ?? null,
      op: ">=",
      limit: 0.95,
      unit: "x",
    }),
    target({
      name: "live bulk insert: segments waiting at the end",
      variant: label(asyncArchiver),
      value: liveRow?.readyAtEnd ?? null,
      op: "<=",
      limit: 2,
      unit: "segments",
    }),
    target({
      name: "live bulk insert: .done seen before the repository listed it",
      variant: label(asyncArchiver),
      value: liveRow?.violations ?? null,
      op: "<=",
      limit: 0,
      unit: "segments",
      ...(liveRow ? { note: `${liveRow.doneChecked} checked` } : {}),
    }),
  );

  for (const row of (results.backup ?? []).filter((r) => r.family === "pgha")) {
    targets.push(
      target({
        name: `backup wall time vs pgBackRest process-max ${row.jobs}`,
        variant: row.label,
        value: row.backupVsPgbr,
        op: "<=",
        limit: 1.0,
        unit: "x",
      }),
      target({
        name: `full restore wall time vs pgBackRest process-max ${row.jobs}`,
        variant: row.label,
        value: row.restoreVsPgbr,
        op: "<=",
        limit: 1.0,
        unit: "x",
      }),
      target({
        name: "peak RSS of backup and restore (process tree)",
        variant: row.label,
        value: Math.round(row.peakTreeRssMb),
        op: "<",
        limit: RSS_LIMIT_MB,
        unit: "MB",
      }),
    );
  }
  if (!results.backup) {
    targets.push(
      target({
        name: "backup / restore wall time and peak RSS",
        variant: "-",
        value: null,
        op: "<=",
        limit: 1,
        unit: "x",
      }),
    );
  }
  return targets;
}
