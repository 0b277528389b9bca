/**
 * WAL continuity over the point-in-time window, from the restore planner's facts. Pure.
 *
 * The window of a timeline runs from the start of the oldest backup on its path to the
 * newest archived segment on it; every segment in between must be archived, once: the
 * restore planner's WAL range (wal-range.ts) lists what is missing. Also reported: history
 * files the planner does not follow (history.ts), names stored with different contents
 * (versions.ts), WAL of a timeline that has no history file, and a timeline whose WAL goes
 * on past the point where a child timeline branched off it (a fork).
 */
import { isWalKept, planWalHorizon, type WalHorizon } from "../../retention/index.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import { followedHistories, knownTimelines, onPath } from "../restore/choose-backup.js";
import type { RestoreFacts } from "../restore/facts.js";
import { planRestore } from "../restore/plan.js";
import { walRange } from "../restore/wal-range.js";
import { parseHistory, timelinePath } from "../wal/history.js";
import {
  formatLsn,
  historyFileName,
  parseLsn,
  parseSegmentFileName,
  parseWalFileName,
  segmentNumber,
} from "../wal/names.js";
import type { Finding } from "./findings.js";

export interface Restorability {
  restorable: boolean;
  /** Missing WAL segments between the backup's start and its end. */
  gaps: string[];
  /** Why not, as the restore planner words it. */
  reasons: string[];
  /** The segments a restore to its end replays (when it is restorable). */
  segments: string[];
}

/** Whether a backup can be restored to its end (recovery target immediate, its own timeline). */
export function backupRestorability(facts: RestoreFacts, backup: BackupManifest): Restorability {
  const outcome = planRestore(facts, {
    target: { kind: "immediate" },
    timeline: "current",
    exclusive: false,
    action: "promote",
    backupId: backup.id,
  });
  if (outcome.ok)
    return { restorable: true, gaps: [], reasons: [], segments: outcome.plan.wal.segments };
  const { gaps, reasons } = outcome.refusal;
  return { restorable: false, gaps, reasons, segments: [] };
}

/**
 * The point-in-time window retention keeps (--pitr-window, the retention zone): a gap
 * before its base backup is WAL prune deletes by design (a pinned or GFS-kept older backup
 * keeps only its own WAL), reported as a warning, not as WAL missing from the window.
 */
export interface WindowPolicy {
  pitrWindow: string;
  now: string;
  zone?: string | undefined;
}

export function checkWalContinuity(facts: RestoreFacts, window?: WindowPolicy): Finding[] {
  const findings: Finding[] = [];
  const followed = followedHistories(facts);
  for (const [timeline, why] of [...followed.ignored].sort(([a], [b]) => a - b)) {
    findings.push({
      kind: "history",
      severity: "error",
      object: historyFileName(timeline),
      timeline,
      message: `${historyFileName(timeline)} is not followed: ${why}; timeline ${timeline} cannot be recovered to`,
    });
  }
  for (const [name, keys] of facts.conflicts ?? []) {
    findings.push({
      kind: "wal-conflict",
      severity: "error",
      object: name,
      message: `${name} is archived with different contents (${keys.join(" and ")}): wal-fetch refuses it; delete the copy the surviving cluster did not write`,
    });
  }
  const walTimelines = new Set<number>();
  for (const name of facts.wal.keys()) {
    const file = parseWalFileName(name);
    if (file) walTimelines.add(file.timeline);
  }
  for (const timeline of [...walTimelines].sort((a, b) => a - b)) {
    if (timeline === 1 || followed.usable.has(timeline) || followed.ignored.has(timeline)) continue;
    findings.push({
      kind: "timeline-without-history",
      severity: "error",
      object: historyFileName(timeline),
      timeline,
      message: `timeline ${timeline} has WAL but no history file (${historyFileName(timeline)}): no recovery can follow it`,
    });
  }
  const size = facts.backups[0]?.walSegmentSize;
  if (size === undefined) return findings;

  const horizon = windowHorizon(facts, window, size, [...walTimelines]);
  /** A gap retention deletes anyway: before the window's base backup. */
  const pruned = (name: string) => {
    try {
      return horizon !== undefined && !isWalKept(name, horizon, size);
    } catch {
      return false; // a manifest with odd WAL names: the window is not known
    }
  };
  const reported = new Set<string>();
  for (const timeline of knownTimelines(facts, followed)) {
    if (timeline > 1 && !followed.usable.has(timeline)) continue; // reported above
    const path = timelinePath(timeline, followed.usable.get(timeline));
    const lsnOf = (b: BackupManifest) => parseLsn(b.startLsn) ?? 0n;
    const oldest = facts.backups
      .filter((b) => onPath(b, path))
      .sort((a, b) => (lsnOf(a) < lsnOf(b) ? -1 : lsnOf(a) > lsnOf(b) ? 1 : 0))[0];
    if (!oldest) continue; // no backup: no window on this path
    const range = walRange(facts, oldest, path, { kind: "latest" });
    if (range.ok) continue;
    const gaps = range.refusal.gaps.filter((name) => !reported.has(name));
    for (const name of gaps) reported.add(name);
    for (const [outside, named] of [
      [true, gaps.filter(pruned)],
      [false, gaps.filter((name) => !pruned(name))],
    ] as const) {
      for (const run of consecutiveRuns(named, size)) {
        const count = run.length;
        const first = run[0] ?? "";
        const last = run.at(-1) ?? "";
        const what =
          count === 1 ? `WAL segment ${first} is` : `${count} WAL segments ${first}..${last} are`;
        findings.push({
          kind: "wal-gap",
          severity: outside ? "warning" : "error",
          object: count === 1 ? first : `${first}..${last}`,
          timeline,
          message: outside
            ? `${what} missing on the path to timeline ${timeline}, before the point-in-time window retention keeps (pitr-window ${window?.pitrWindow}, from backup ${horizon?.anchor}; prune deletes such WAL): backups before ${count === 1 ? "it" : "them"} restore only to their own end`
            : `${what} missing on the path to timeline ${timeline} (its window starts with backup ${oldest.id}): no recovery can replay past ${count === 1 ? "it" : "them"}`,
        });
      }
    }
  }
  findings.push(...forks(facts, followed.usable, size));
  return findings;
}

/** The WAL retention keeps under `window`; none (every gap an error) where it cannot tell. */
function windowHorizon(
  facts: RestoreFacts,
  window: WindowPolicy | undefined,
  size: number,
  timelines: number[],
): WalHorizon | undefined {
  if (window === undefined) return undefined;
  try {
    return planWalHorizon({
      kept: facts.backups,
      pitrWindow: window.pitrWindow,
      now: window.now,
      walSegmentSize: size,
      timelines,
      ...(window.zone === undefined ? {} : { zone: window.zone }),
    });
  } catch {
    return undefined; // a manifest without a stop time: the window is not known
  }
}

/** Runs of names with consecutive segment numbers on one timeline. */
function consecutiveRuns(names: string[], size: number): string[][] {
  const runs: string[][] = [];
  let previous: { timeline: number; seg: bigint } | undefined;
  for (const name of names) {
    const file = parseSegmentFileName(name);
    if (!file) continue;
    const seg = segmentNumber(file, size);
    const run = runs.at(-1);
    if (run && previous?.timeline === file.timeline && previous.seg + 1n === seg) run.push(name);
    else runs.push([name]);
    previous = { timeline: file.timeline, seg };
  }
  return runs;
}

/** Segments of a parent timeline that start after the point where a child branched off it. */
function forks(facts: RestoreFacts, usable: Map<number, string>, size: number): Finding[] {
  const findings: Finding[] = [];
  for (const [timeline, text] of [...usable].sort(([a], [b]) => a - b)) {
    const history = parseHistory(timeline, text);
    const branch = history.ok ? history.entries.at(-1) : undefined;
    if (!branch) continue;
    // The first segment that starts at or after the switch point: the parent's copy of it
    // holds only WAL written after the branch. (The segment holding the switch point is
    // the promoted server's .partial, or the old primary's, which cannot be told apart.)
    const firstAfter = (branch.switchpoint + BigInt(size) - 1n) / BigInt(size);
    const after: [bigint, string][] = [];
    for (const name of facts.wal.keys()) {
      const file = parseWalFileName(name);
      if (file?.kind !== "segment" || file.timeline !== branch.parent) continue;
      const seg = segmentNumber(file, size);
      if (seg >= firstAfter) after.push([seg, name]);
    }
    if (after.length === 0) continue;
    after.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const first = after[0]?.[1] ?? "";
    const last = after.at(-1)?.[1] ?? "";
    findings.push({
      kind: "wal-fork",
      severity: "warning",
      object: after.length === 1 ? first : `${first}..${last}`,
      timeline: branch.parent,
      message: `timeline ${branch.parent} goes on past where timeline ${timeline} branched off it (${formatLsn(branch.switchpoint)}): ${after.length} segment${after.length === 1 ? "" : "s"} (${first}${after.length === 1 ? "" : `..${last}`}); two servers wrote WAL after the switch (an old primary after a failover?); a recovery follows one of them only`,
    });
  }
  return findings;
}
