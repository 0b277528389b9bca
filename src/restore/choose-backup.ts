/**
 * Which backup a restore starts from, and the timeline path it recovers along. Pure.
 *
 * - Target timeline: a number; "latest" (the newest timeline the archive knows);
 *   "current" (the chosen backup's own timeline).
 * - A backup is on the path when its timeline is on it and it ended before that
 *   timeline branched off. Of those, the newest that can reach the target is chosen:
 *   for a time, one that finished at or before it; for an LSN, one whose stop LSN is at
 *   or before it; for latest, immediate, an xid or a restore point, the newest (the
 *   repository cannot know where an xid or a name is: the plan says so in a note).
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import {
  type HistoryEntry,
  parseHistory,
  type TimelineStep,
  timelinePath,
} from "../wal/history.js";
import { historyFileName, parseLsn, parseWalFileName } from "../wal/names.js";
import type { RestoreFacts } from "./facts.js";
import { type Chosen, refuse } from "./refusal.js";
import { describeTarget, type RestoreRequest } from "./target.js";

export interface BackupChoice {
  backup: BackupManifest;
  targetTimeline: number;
  path: TimelineStep[];
  notes: string[];
  /** History files not followed, one line each ("00000002.history: why"). */
  ignoredHistories: string[];
}

export interface FollowedHistories {
  /** History files that are followed, by timeline. */
  usable: Map<number, string>;
  /** The others, by timeline, with why. */
  ignored: Map<number, string>;
}

/**
 * The history files a plan follows: those that parse (parseHistory) and whose ancestry
 * agrees with their parent's history file where that one is followed. A file that fails
 * is not followed and is reported, so that one bad file (archived by an older pgha, or
 * put there by hand) does not refuse every restore: its timeline is not a target.
 */
export function followedHistories(facts: RestoreFacts): FollowedHistories {
  const usable = new Map<number, string>();
  const ignored = new Map<number, string>(facts.unreadableHistories ?? []);
  const parsed = new Map<number, HistoryEntry[]>();
  for (const timeline of [...facts.histories.keys()].sort((a, b) => a - b)) {
    const text = facts.histories.get(timeline) ?? "";
    const history = parseHistory(timeline, text);
    if (!history.ok) {
      ignored.set(timeline, history.reason);
      continue;
    }
    const parent = history.entries.at(-1)?.parent ?? 0;
    const inherited = parsed.get(parent);
    const own = history.entries.slice(0, -1);
    if (
      inherited &&
      (inherited.length !== own.length ||
        inherited.some(
          (e, i) => e.parent !== own[i]?.parent || e.switchpoint !== own[i]?.switchpoint,
        ))
    ) {
      ignored.set(
        timeline,
        `its ancestry differs from the one ${historyFileName(parent)} lists for its parent timeline ${parent}`,
      );
      continue;
    }
    parsed.set(timeline, history.entries);
    usable.set(timeline, text);
  }
  return { usable, ignored };
}

/** Every timeline a recovery could target: 1, those with a followed history file, a backup or WAL; never one whose history file is not followed. */
export function knownTimelines(facts: RestoreFacts, followed: FollowedHistories): number[] {
  const set = new Set<number>([
    1,
    ...followed.usable.keys(),
    ...facts.backups.map((b) => b.timeline),
  ]);
  for (const name of facts.wal.keys()) {
    const file = parseWalFileName(name);
    if (file) set.add(file.timeline);
  }
  // A timeline whose history file is not followed cannot be recovered to.
  for (const timeline of followed.ignored.keys()) set.delete(timeline);
  return [...set].sort((a, b) => a - b);
}

/** Whether a backup can start a recovery along the path: its timeline is on it, and it ended before that timeline branched off. */
export function onPath(backup: BackupManifest, path: TimelineStep[]): boolean {
  const step = path.find((s) => s.timeline === backup.timeline);
  const stop = parseLsn(backup.stopLsn);
  return step !== undefined && stop !== undefined && (step.end === null || stop <= step.end);
}

function pathFor(followed: FollowedHistories, timeline: number): Chosen<TimelineStep[]> {
  const ignored = followed.ignored.get(timeline);
  if (timeline > 1 && ignored !== undefined) {
    return refuse(
      `timeline ${timeline}'s history file ${historyFileName(timeline)} is not followed: ${ignored}`,
    );
  }
  if (timeline > 1 && !followed.usable.has(timeline)) {
    return refuse(
      `timeline ${timeline} has no history file (${historyFileName(timeline)}) in the archive`,
    );
  }
  return { ok: true, value: timelinePath(timeline, followed.usable.get(timeline)) };
}

export function chooseBackup(facts: RestoreFacts, request: RestoreRequest): Chosen<BackupChoice> {
  if (facts.backups.length === 0) return refuse("the repository has no backups of this cluster");
  const target = request.target;
  const followed = followedHistories(facts);

  let candidates: BackupManifest[];
  let targetTimeline: number;
  let path: TimelineStep[];
  if (request.timeline === "current") {
    // Each backup recovers along its own timeline.
    candidates = facts.backups;
    targetTimeline = 0;
    path = [];
  } else {
    targetTimeline =
      request.timeline === "latest"
        ? Math.max(...knownTimelines(facts, followed))
        : request.timeline;
    const found = pathFor(followed, targetTimeline);
    if (!found.ok) return found;
    path = found.value;
    candidates = facts.backups.filter((b) => onPath(b, path));
  }

  const stopOf = (b: BackupManifest) => parseLsn(b.stopLsn) ?? 0n;
  candidates = [...candidates].sort((a, b) =>
    stopOf(a) < stopOf(b) ? 1 : stopOf(a) > stopOf(b) ? -1 : b.id.localeCompare(a.id),
  );
  const reaches = (b: BackupManifest): boolean => {
    if (target.kind === "time") return Date.parse(b.stopTime) <= target.at;
    if (target.kind === "lsn") return stopOf(b) <= (parseLsn(target.lsn) ?? 0n);
    return true;
  };

  let backup: BackupManifest | undefined;
  if (request.backupId !== undefined) {
    backup = facts.backups.find((b) => b.id === request.backupId);
    if (!backup) {
      const refusal = refuse(`there is no backup ${request.backupId}`);
      return { ok: false, refusal: { ...refusal.refusal, missingBackup: request.backupId } };
    }
    if (!candidates.includes(backup)) {
      return refuse(
        `backup ${backup.id} is not on the path to timeline ${targetTimeline} (it is on timeline ${backup.timeline}, past the branch point)`,
      );
    }
    if (!reaches(backup))
      return refuse(
        `backup ${backup.id} ended after ${describeTarget(target)}: it cannot reach it`,
      );
  } else {
    backup = candidates.find(reaches);
    if (!backup) {
      const where =
        request.timeline === "current" ? "" : ` on the path to timeline ${targetTimeline}`;
      return refuse(
        `no backup finished at or before ${describeTarget(target)}${where}; the oldest ended ${facts.backups[0]?.stopTime} at ${facts.backups[0]?.stopLsn}`,
      );
    }
  }
  if (request.timeline === "current") {
    targetTimeline = backup.timeline;
    const found = pathFor(followed, targetTimeline);
    if (!found.ok) return found;
    path = found.value;
  }
  const notes: string[] = [];
  if (target.kind === "xid" || target.kind === "name") {
    notes.push(
      `the repository cannot know where ${describeTarget(target)} is: backup ${backup.id} is the newest on the path; if the target lies before its end (${backup.stopTime}), recovery stops with an error: choose an older one with --backup`,
    );
  }
  const ignoredHistories = [...followed.ignored].map(
    ([timeline, why]) => `${historyFileName(timeline)}: ${why}`,
  );
  for (const line of ignoredHistories) notes.push(`history file not followed: ${line}`);
  return { ok: true, value: { backup, targetTimeline, path, notes, ignoredHistories } };
}
