/**
 * planStatus: pure. From what a repository holds about one cluster (and, when reachable,
 * what its server says) to the status `pgha status` prints and `pgha metrics` exposes:
 * the newest archived WAL and its age (the RPO), the point-in-time window of each
 * timeline with the gaps that cut it, the newest backup, dump set and drill, the bytes
 * stored by kind, and the thresholds that are breached.
 *
 * The window comes from the restore planner's own WAL range (wal-range.ts): for each
 * backup on a timeline's path, the range a recovery to the end of the archive needs. A
 * backup whose range is complete reaches the archive end; one whose range has a gap
 * reaches the segment before it; one whose own WAL (start to stop) is missing reaches
 * nothing. An increment whose chain lacks a backup (its manifest gone or unreadable)
 * reaches nothing either, as the restore planner passes it over. So the window status
 * shows is the one `restore plan` would honour.
 */
import { chainIds, missingChainMember } from "../backup/chain-manifest.js";
import { formatDuration } from "../human-units.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import type { DrillReport } from "../repository/drill-report.js";
import type { DumpManifest } from "../repository/dump-manifest.js";
import {
  type ArchiveEnd,
  archiveEnd,
  newestOnPath,
  timelineOfSegment,
} from "../restore/archive-end.js";
import { followedHistories, knownTimelines, onPath } from "../restore/choose-backup.js";
import type { RestoreFacts } from "../restore/facts.js";
import { walRange } from "../restore/wal-range.js";
import { type TimelineStep, timelinePath } from "../wal/history.js";
import {
  historyFileName,
  parseSegmentFileName,
  parseWalFileName,
  segmentName,
  segmentNumber,
} from "../wal/names.js";

/** pg_stat_archiver, as the server reports it. */
export interface ArchiverStats {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedTime: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: string | null;
}

/** The asynchronous archiver's status.json (src/wal/archiver.ts), as far as status uses it. */
export interface SpoolStatus {
  running: boolean;
  updatedAt: string;
  backlog: { files: number; bytes: number; oldest: string | null };
  overLimit: boolean;
  stored: number;
  lastStored: { name: string; at: string } | null;
  lastError: { name: string; message: string; at: string } | null;
}

/** What the server side adds; every part is optional: absent means unknown, with a note. */
export interface ServerFacts {
  /** The server answered. */
  reachable: boolean;
  archiver?: ArchiverStats | undefined;
  /** Files pg_wal/archive_status marks .ready, and their bytes. */
  ready?: { files: number; bytes: number } | undefined;
  spool?: SpoolStatus | undefined;
  notes: string[];
}

export interface ClusterFacts {
  cluster: string;
  restore: RestoreFacts;
  dumps: DumpManifest[];
  drills: DrillReport[];
  /** Bytes stored under the cluster's prefix, by kind (one listing). */
  bytes: RepositoryBytes;
  /** Of the newest backup and its chain, those whose last verify record says it failed. */
  failedVerifies?: string[] | undefined;
  server?: ServerFacts | undefined;
}

export interface RepositoryBytes {
  wal: number;
  backups: number;
  dumps: number;
  /** Identity, locks, drill reports, schedule state, probes. */
  other: number;
}

export interface Thresholds {
  maxRpoMs?: number | undefined;
  maxBackupAgeMs?: number | undefined;
  maxDrillAgeMs?: number | undefined;
}

/** A stretch of time a recovery can reach, and the backup it starts from. */
export interface RestorableRange {
  backup: string;
  from: string;
  /** The newest time reached: before this (clock "database") or about this ("storage"). */
  to: string | undefined;
  clock: "database" | "storage";
}

/** Missing segments, one run of consecutive ones; the times around it are the store's. */
export interface WalGap {
  first: string;
  last: string;
  count: number;
  /** When the segment before the gap was stored (the store's clock), if known. */
  after: string | undefined;
  /** When the segment after it was stored, if known. */
  before: string | undefined;
}

export interface TimelineWindow {
  timeline: number;
  /** Oldest and newest restorable time; undefined when no backup on the path can be restored. */
  start: string | undefined;
  end: string | undefined;
  /** "database": end is the push time of the archive's last segment (a bound from above). */
  endClock: "database" | "storage";
  /** The newest archived segment on the path. */
  archiveEnd: ArchiveEnd | undefined;
  ranges: RestorableRange[];
  gaps: WalGap[];
  /** Backups on the path whose own WAL is incomplete: they restore to nothing. */
  unrestorableBackups: string[];
  notes: string[];
}

export interface LastBackup {
  id: string;
  startTime: string;
  stopTime: string;
  durationSeconds: number;
  timeline: number;
  /** full, or incr of `parent` (restoring it needs its chain). */
  type: "full" | "incr";
  parent: string | null;
  rawBytes: number;
  storedBytes: number;
  /**
   * Its WAL from start to stop is archived on some path, its chain is there, and the last
   * verify of neither it nor a backup of its chain failed (it restores at least to its end).
   */
  restorable: boolean;
  /** A backup of its chain that is missing (or whose manifest is unreadable), if any. */
  chainLacks: string | null;
  /** It and the backups of its chain whose last `pgha verify` failed, oldest first. */
  verifyFailed: string[];
}

export interface LastDump {
  id: string;
  startTime: string;
  stopTime: string;
  durationSeconds: number;
  databases: number;
  rawBytes: number;
  storedBytes: number;
}

export interface LastDrill {
  id: string;
  startTime: string;
  stopTime: string;
  passed: boolean;
  /** The drill's total time, from plan to checks: the recovery time it measured (RTO). */
  rtoSeconds: number;
  target: string;
  backup: string | null;
  error: string | null;
}

export interface LastArchived {
  name: string;
  timeline: number;
  /** When it was pushed (clock "database") or stored (clock "storage"). */
  time: string | undefined;
  clock: "database" | "storage";
  ageSeconds: number | undefined;
}

export interface ClusterStatus {
  cluster: string;
  checkedAt: string;
  lastArchived: LastArchived | null;
  timelines: TimelineWindow[];
  backups: number;
  lastBackup: LastBackup | null;
  dumps: number;
  lastDump: LastDump | null;
  drills: number;
  lastDrill: LastDrill | null;
  /** The newest drill that passed (the one --max-drill-age is about). */
  lastPassedDrill: LastDrill | null;
  repositoryBytes: RepositoryBytes;
  /** Absent when the server was not asked. */
  server?: ServerFacts | undefined;
  /** One line per breached threshold. */
  breaches: string[];
}

const seconds = (from: string, to: number) => (to - Date.parse(from)) / 1000;

/** A duration for messages: 45s, 12m30s, 5h02m, 3d04h (the one format: human-units.ts). */
export const formatAge = formatDuration;

export function planStatus(facts: ClusterFacts, now: number, thresholds: Thresholds = {}) {
  const { restore } = facts;
  const backups = [...restore.backups].sort((a, b) => a.stopTime.localeCompare(b.stopTime));
  const timelines = timelineWindows(restore, backups);
  const restorable = new Set(timelines.flatMap((t) => t.ranges.map((r) => r.backup)));
  const newestBackup = backups.at(-1);
  const dumps = [...facts.dumps].sort((a, b) => a.stopTime.localeCompare(b.stopTime));
  const newestDump = dumps.at(-1);
  const drills = [...facts.drills].sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
  const status: ClusterStatus = {
    cluster: facts.cluster,
    checkedAt: new Date(now).toISOString(),
    lastArchived: lastArchived(restore, now),
    timelines,
    backups: backups.length,
    lastBackup: newestBackup
      ? describeBackup(
          newestBackup,
          restorable,
          missingChainMember(newestBackup, new Set(backups.map((b) => b.id))),
          facts.failedVerifies ?? [],
        )
      : null,
    dumps: dumps.length,
    lastDump: newestDump ? describeDump(newestDump) : null,
    drills: drills.length,
    lastDrill: drills.length > 0 ? describeDrill(drills.at(-1) as DrillReport) : null,
    lastPassedDrill: lastOf(drills.filter((d) => d.passed).map(describeDrill)),
    repositoryBytes: facts.bytes,
    ...(facts.server ? { server: facts.server } : {}),
    breaches: [],
  };
  status.breaches = breachesOf(status, now, thresholds);
  return status;
}

const lastOf = <T>(items: T[]): T | null => items.at(-1) ?? null;

function describeBackup(
  m: BackupManifest,
  restorable: Set<string>,
  chainLacks: string | undefined,
  failedVerifies: readonly string[],
): LastBackup {
  const verifyFailed = [...chainIds(m), m.id].filter((id) => failedVerifies.includes(id));
  return {
    id: m.id,
    startTime: m.startTime,
    stopTime: m.stopTime,
    durationSeconds: seconds(m.startTime, Date.parse(m.stopTime)),
    timeline: m.timeline,
    type: m.type ?? "full",
    parent: m.parent ?? null,
    rawBytes: m.rawBytes,
    storedBytes: m.storedBytes,
    restorable: restorable.has(m.id) && verifyFailed.length === 0,
    chainLacks: chainLacks ?? null,
    verifyFailed,
  };
}

function describeDump(m: DumpManifest): LastDump {
  const objects = [m.globals, ...m.databases];
  return {
    id: m.id,
    startTime: m.startTime,
    stopTime: m.stopTime,
    durationSeconds: seconds(m.startTime, Date.parse(m.stopTime)),
    databases: m.databases.length,
    rawBytes: objects.reduce((sum, o) => sum + o.rawSize, 0),
    storedBytes: objects.reduce((sum, o) => sum + o.storedSize, 0),
  };
}

function describeDrill(r: DrillReport): LastDrill {
  return {
    id: r.id,
    startTime: r.startedAt,
    stopTime: r.finishedAt,
    passed: r.passed,
    rtoSeconds: r.phases.total / 1000,
    target: r.target,
    backup: r.backup,
    error: r.error,
  };
}

/** The newest archived segment: the greatest name (newest timeline, then position). */
function lastArchived(restore: RestoreFacts, now: number): LastArchived | null {
  let newest: string | undefined;
  for (const name of restore.wal.keys()) {
    if (parseWalFileName(name)?.kind !== "segment") continue;
    if (newest === undefined || name > newest) newest = name;
  }
  if (newest === undefined) return null;
  const object = restore.wal.get(newest);
  const time = object?.pushedAt ?? object?.storedAt;
  return {
    name: newest,
    timeline: parseSegmentFileName(newest)?.timeline ?? 1,
    time,
    clock: object?.pushedAt !== undefined ? "database" : "storage",
    ageSeconds: time === undefined ? undefined : seconds(time, now),
  };
}

function timelineWindows(restore: RestoreFacts, backups: BackupManifest[]): TimelineWindow[] {
  const followed = followedHistories(restore);
  const windows: TimelineWindow[] = [];
  const timelines = new Set([...knownTimelines(restore, followed), ...followed.ignored.keys()]);
  for (const timeline of [...timelines].sort((a, b) => a - b)) {
    const ignored = followed.ignored.get(timeline);
    if (timeline > 1 && !followed.usable.has(timeline)) {
      // No path: restore refuses the timeline, and says why.
      const why =
        ignored === undefined
          ? `its history file ${historyFileName(timeline)} is not in the archive`
          : `its history file ${historyFileName(timeline)} is not followed: ${ignored}`;
      windows.push({ ...emptyWindow(timeline), notes: [`nothing can be restored to it: ${why}`] });
      continue;
    }
    const path = timelinePath(timeline, followed.usable.get(timeline));
    windows.push(windowOf(restore, timeline, path, backups));
  }
  return windows;
}

function emptyWindow(timeline: number): TimelineWindow {
  return {
    timeline,
    start: undefined,
    end: undefined,
    endClock: "storage",
    archiveEnd: undefined,
    ranges: [],
    gaps: [],
    unrestorableBackups: [],
    notes: [],
  };
}

/** One timeline's window: what each backup on its path reaches, and the gaps. */
function windowOf(
  restore: RestoreFacts,
  timeline: number,
  path: TimelineStep[],
  backups: BackupManifest[],
): TimelineWindow {
  const window = emptyWindow(timeline);
  const present = new Set(backups.map((b) => b.id));
  const onThisPath = backups.filter((b) => onPath(b, path));
  if (onThisPath.length === 0) {
    window.notes.push("no backup on this timeline's path: nothing can be restored to it");
    return window;
  }
  const latest = { kind: "latest" } as const;
  const size = (onThisPath[0] as BackupManifest).walSegmentSize;
  const newest = newestOnPath(restore.wal.keys(), path, size, -1n, timeline);
  if (newest >= 0n) {
    const name = nameOnPath(path, newest, size, timeline);
    const tli = timelineOfSegment(path, newest, size, timeline);
    window.archiveEnd = archiveEnd(name, tli, restore.wal.get(name));
  }
  let reachesEnd = false;
  for (const [i, backup] of onThisPath.entries()) {
    const range = walRange(restore, backup, path, latest);
    if (i === 0 && !range.ok && range.refusal.gaps.length > 0)
      window.gaps = groupGaps(restore, range.refusal.gaps, path, size, timeline);
    const lacks = missingChainMember(backup, present);
    if (lacks !== undefined) {
      window.notes.push(`backup ${backup.id} lacks ${lacks} of its chain: not restorable`);
      continue;
    }
    if (range.ok) {
      reachesEnd = true;
      window.ranges.push(rangeOf(backup, range.value.end.time, range.value.end.clock));
      continue;
    }
    const { gaps, reasons } = range.refusal;
    const first = gaps[0] === undefined ? undefined : parseSegmentFileName(gaps[0]);
    const stop = parseSegmentFileName(backup.stopWal);
    if (!first || !stop) {
      window.notes.push(...reasons);
      continue;
    }
    const firstMissing = segmentNumber(first, size);
    if (firstMissing <= segmentNumber(stop, size)) {
      window.unrestorableBackups.push(backup.id);
      continue;
    }
    const before = nameOnPath(path, firstMissing - 1n, size, timeline);
    window.ranges.push(rangeOf(backup, restore.wal.get(before)?.storedAt, "storage"));
  }
  const reached = window.ranges.filter((r) => r.to !== undefined);
  window.start = window.ranges.map((r) => r.from).sort()[0];
  const last = reached.sort((a, b) => (a.to as string).localeCompare(b.to as string)).at(-1);
  window.end = last?.to;
  window.endClock = last?.clock ?? "storage";
  if (!reachesEnd && window.ranges.length > 0) {
    window.notes.push(
      "no backup reaches the end of the archive: a gap cuts the window (take a backup)",
    );
  }
  return window;
}

/**
 * What a backup reaches: from its end to `to`. A backup with no WAL archived after its
 * own (its stop segment was the last one pushed) reaches its end only: `to` is never
 * before `from`, whose clocks differ.
 */
function rangeOf(
  backup: BackupManifest,
  to: string | undefined,
  clock: "database" | "storage",
): RestorableRange {
  const from = backup.stopTime;
  const reached = to !== undefined && Date.parse(to) < Date.parse(from) ? from : to;
  return { backup: backup.id, from, to: reached, clock };
}

function nameOnPath(path: TimelineStep[], seg: bigint, size: number, fallback: number): string {
  return segmentName(timelineOfSegment(path, seg, size, fallback), seg, size);
}

/** Missing segment names (in order) as runs of consecutive ones, with the times around each. */
function groupGaps(
  restore: RestoreFacts,
  names: string[],
  path: TimelineStep[],
  size: number,
  fallback: number,
): WalGap[] {
  const gaps: WalGap[] = [];
  let run: { first: string; last: string; firstSeg: bigint; lastSeg: bigint } | undefined;
  const close = () => {
    if (!run) return;
    const stored = (seg: bigint) =>
      restore.wal.get(nameOnPath(path, seg, size, fallback))?.storedAt;
    gaps.push({
      first: run.first,
      last: run.last,
      count: Number(run.lastSeg - run.firstSeg + 1n),
      after: stored(run.firstSeg - 1n),
      before: stored(run.lastSeg + 1n),
    });
  };
  for (const name of names) {
    const file = parseSegmentFileName(name);
    if (!file) continue;
    const seg = segmentNumber(file, size);
    if (run && seg === run.lastSeg + 1n) {
      run.last = name;
      run.lastSeg = seg;
    } else {
      close();
      run = { first: name, last: name, firstSeg: seg, lastSeg: seg };
    }
  }
  close();
  return gaps;
}

function breachesOf(status: ClusterStatus, now: number, t: Thresholds): string[] {
  const lines: string[] = [];
  const over = (limitMs: number | undefined, ageSeconds: number) =>
    limitMs !== undefined && ageSeconds * 1000 > limitMs;
  const limit = (ms: number) => formatAge(ms / 1000);
  const where = `cluster '${status.cluster}'`;
  if (t.maxRpoMs !== undefined) {
    const last = status.lastArchived;
    if (!last || last.ageSeconds === undefined) {
      lines.push(`${where}: no archived WAL with a known time (--max-rpo ${limit(t.maxRpoMs)})`);
    } else if (over(t.maxRpoMs, last.ageSeconds)) {
      lines.push(
        `${where}: RPO ${formatAge(last.ageSeconds)} is over --max-rpo ${limit(t.maxRpoMs)}: the newest archived WAL ${last.name} was ${last.clock === "database" ? "pushed" : "stored"} at ${last.time}`,
      );
    }
  }
  if (t.maxBackupAgeMs !== undefined) {
    const b = status.lastBackup;
    if (!b) lines.push(`${where}: no backup (--max-backup-age ${limit(t.maxBackupAgeMs)})`);
    else if (over(t.maxBackupAgeMs, seconds(b.stopTime, now))) {
      lines.push(
        `${where}: the newest backup ${b.id} is ${formatAge(seconds(b.stopTime, now))} old, over --max-backup-age ${limit(t.maxBackupAgeMs)}`,
      );
    }
  }
  if (t.maxDrillAgeMs !== undefined) {
    const d = status.lastPassedDrill;
    const failed =
      status.lastDrill && !status.lastDrill.passed
        ? ` (the last drill, ${status.lastDrill.id}, failed)`
        : "";
    if (!d) {
      lines.push(
        `${where}: no drill has passed (--max-drill-age ${limit(t.maxDrillAgeMs)})${failed}`,
      );
    } else if (over(t.maxDrillAgeMs, seconds(d.stopTime, now))) {
      lines.push(
        `${where}: the newest passing drill ${d.id} is ${formatAge(seconds(d.stopTime, now))} old, over --max-drill-age ${limit(t.maxDrillAgeMs)}${failed}`,
      );
    }
  }
  return lines;
}
