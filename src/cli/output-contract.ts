/**
 * The field names every --json output uses for the same idea (README, "Output"):
 *   startTime, stopTime   when something that takes time started and ended (ISO 8601, UTC)
 *   time                  a single instant (a WAL segment archived, a verification)
 *   durationSeconds, ageSeconds, rtoSeconds   spans in seconds; phases of a drill in ms
 *   rawBytes, storedBytes, bytes              raw byte counts (text output rounds them)
 * Stored objects keep their own format: a drill report is stored with startedAt and
 * finishedAt (format 1, read by every version) and printed with startTime and stopTime.
 */
import type { PlannedItem } from "../../retention/index.js";
import type { DrillReport } from "../repository/drill-report.js";

/** Names the contract replaces, never printed: test/cli/output-contract.test.ts walks outputs for them. */
export const RETIRED_FIELD_NAMES = ["startedAt", "finishedAt", "started", "finished", "endTime"];

/** `drill --json` and each row of `drill list --json`. */
export function drillJson(report: DrillReport) {
  const r = report;
  return {
    format: r.format,
    kind: r.kind,
    id: r.id,
    cluster: r.cluster,
    passed: r.passed,
    startTime: r.startedAt,
    stopTime: r.finishedAt,
    durationSeconds: (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000,
    target: r.target,
    backup: r.backup,
    phases: r.phases,
    lastReplayedCommit: r.lastReplayedCommit,
    checks: r.checks,
    error: r.error,
  };
}

/** A backup or dump set in `prune --json`: the time the policy ranked it by is its start. */
export function pruneItemJson(item: PlannedItem) {
  return {
    id: item.id,
    startTime: item.time,
    pinned: item.pinned,
    keep: item.keep,
    reasons: item.reasons,
  };
}
