/**
 * `pgha status` as text: one block per cluster. Pure: the caller says whether the output
 * is a terminal (then each timeline also gets a bar) and how wide it is.
 *
 * The bar spans from the oldest restorable time (or the oldest backup on the path) to
 * now: '=' restorable, 'x' a WAL gap, '-' archived but not restorable (no backup before
 * it reaches it), '.' not archived yet (the RPO), marks below it: B a backup (! one whose WAL is
 * incomplete), D a dump set, ✓ / ✗ a drill that passed / failed.
 */

import type { BackupManifest } from "../repository/backup-manifest.js";
import type { DrillReport } from "../repository/drill-report.js";
import type { DumpManifest } from "../repository/dump-manifest.js";
import {
  type ClusterStatus,
  formatAge,
  type LastBackup,
  type ServerFacts,
  type TimelineWindow,
} from "../status/plan-status.js";
import { formatBytes, renderTable } from "./table.js";

/** Catalog items drawn as marks on the bar (all of them, not only the newest). */
export interface BarMarks {
  backups: BackupManifest[];
  dumps: DumpManifest[];
  drills: DrillReport[];
}

export interface TextOptions {
  now: number;
  /** Draw the bars (a terminal) with this many columns; undefined: plain text. */
  barWidth?: number | undefined;
  marks?: BarMarks | undefined;
}

const short = (iso: string) => iso.replace(/\.\d+Z$/, "Z");
const ago = (iso: string, now: number) => `${formatAge((now - Date.parse(iso)) / 1000)} ago`;

export function renderStatusText(status: ClusterStatus, options: TextOptions): string {
  const { now } = options;
  const rows: [string, string][] = [];
  const last = status.lastArchived;
  rows.push([
    "last archived WAL",
    last === null
      ? "none"
      : `${last.name}, ${last.clock === "database" ? "pushed" : "stored"} ${last.time ? `${short(last.time)} (${ago(last.time, now)}: the RPO)` : "at an unknown time"}`,
  ]);
  const bars: string[] = [];
  for (const window of status.timelines) {
    rows.push([`timeline ${window.timeline}`, describeWindow(window)]);
    for (const gap of window.gaps) rows.push(["  gap", describeGap(gap)]);
    for (const id of window.unrestorableBackups)
      rows.push(["  unrestorable", `backup ${id}: WAL it needs to reach consistency is missing`]);
    for (const note of window.notes) rows.push(["  note", note]);
    if (options.barWidth !== undefined && options.marks)
      bars.push(...renderBar(window, options.marks, now, options.barWidth));
  }
  const b = status.lastBackup;
  rows.push([
    "last backup",
    b
      ? `${b.id}${b.type === "incr" ? ` (incremental of ${b.parent})` : ""}, ended ${short(b.stopTime)} (${ago(b.stopTime, now)}), took ${formatAge(b.durationSeconds)}, ${formatBytes(b.rawBytes)} stored as ${formatBytes(b.storedBytes)}, ${b.restorable ? "restorable" : notRestorable(b)}; ${status.backups} in all`
      : "none",
  ]);
  const d = status.lastDump;
  rows.push([
    "last dump set",
    d
      ? `${d.id}, ended ${short(d.stopTime)} (${ago(d.stopTime, now)}), took ${formatAge(d.durationSeconds)}, ${d.databases} database${d.databases === 1 ? "" : "s"}, ${formatBytes(d.rawBytes)} stored as ${formatBytes(d.storedBytes)}; ${status.dumps} in all`
      : "none",
  ]);
  const r = status.lastDrill;
  const passed = status.lastPassedDrill;
  rows.push([
    "last drill",
    r
      ? `${r.id}, ${r.passed ? "passed" : `FAILED${r.error ? ` (${r.error})` : ""}`} ${short(r.stopTime)} (${ago(r.stopTime, now)}), RTO ${formatAge(r.rtoSeconds)}, target ${r.target}${!r.passed && passed ? `; last passed ${short(passed.stopTime)}` : ""}`
      : "none",
  ]);
  const bytes = status.repositoryBytes;
  rows.push([
    "repository",
    `WAL ${formatBytes(bytes.wal)}, backups ${formatBytes(bytes.backups)}, dump sets ${formatBytes(bytes.dumps)}, other ${formatBytes(bytes.other)}`,
  ]);
  if (status.server) rows.push(...serverRows(status.server, now));
  const table = renderTable(["", ""], rows, false)
    .split("\n")
    .map((line) => (line ? `  ${line}` : line))
    .join("\n");
  const legend =
    bars.length > 0
      ? [
          "  = restorable  x WAL gap  - archived, not restorable  . not archived yet",
          "  B backup (! unrestorable)  D dump set  ✓ drill passed  ✗ drill failed",
        ]
      : [];
  return [`cluster ${status.cluster}`, table.trimEnd(), ...bars, ...legend, ""].join("\n");
}

function describeWindow(w: TimelineWindow): string {
  if (w.start === undefined) return "nothing can be restored";
  const end =
    w.end === undefined
      ? "an unknown time"
      : w.endClock === "database"
        ? `just before ${short(w.end)}`
        : `about ${short(w.end)}`;
  const gaps =
    w.gaps.length === 0 ? "no gaps" : `${w.gaps.length} gap${w.gaps.length > 1 ? "s" : ""}`;
  return `restorable from ${short(w.start)} to ${end}, ${gaps}`;
}

function describeGap(gap: TimelineWindow["gaps"][number]): string {
  const names = gap.count === 1 ? gap.first : `${gap.first} .. ${gap.last}`;
  const when =
    gap.after !== undefined || gap.before !== undefined
      ? `, between ${gap.after ? short(gap.after) : "?"} and ${gap.before ? short(gap.before) : "?"}`
      : "";
  return `${names} missing (${gap.count} segment${gap.count > 1 ? "s" : ""})${when}`;
}

function serverRows(server: ServerFacts, now: number): [string, string][] {
  const rows: [string, string][] = [];
  if (server.archiver) {
    const a = server.archiver;
    rows.push([
      "pg_stat_archiver",
      `${a.archivedCount} archived, ${a.failedCount} failed${a.lastFailedTime ? ` (last ${a.lastFailedWal} at ${short(a.lastFailedTime)}, ${ago(a.lastFailedTime, now)})` : ""}`,
    ]);
  }
  if (server.ready) {
    rows.push([
      "waiting (.ready)",
      `${server.ready.files} file${server.ready.files === 1 ? "" : "s"}, ${formatBytes(server.ready.bytes)}`,
    ]);
  }
  if (server.spool) {
    const s = server.spool;
    rows.push([
      "async archiver",
      `${s.running ? "running" : "stopped"} (updated ${ago(s.updatedAt, now)}), backlog ${s.backlog.files} files, ${formatBytes(s.backlog.bytes)}${s.overLimit ? " (over the warning limit)" : ""}, ${s.stored} stored${s.lastError ? `; last error on ${s.lastError.name} ${ago(s.lastError.at, now)}: ${s.lastError.message}` : ""}`,
    ]);
  }
  if (!server.reachable && server.notes.length === 0) rows.push(["server", "not reachable"]);
  for (const note of server.notes) rows.push(["server note", note]);
  return rows;
}

/**
 * A timeline's bar and its marks, `width` columns of time each, from the window's start
 * (or the oldest backup on it) to now, with the two times below.
 */
export function renderBar(
  window: TimelineWindow,
  marks: BarMarks,
  now: number,
  width: number,
): string[] {
  const ranges = window.ranges.map((r) => ({
    from: Date.parse(r.from),
    to: r.to === undefined ? undefined : Date.parse(r.to),
  }));
  const onPath = marks.backups.filter(
    (b) =>
      window.ranges.some((r) => r.backup === b.id) || window.unrestorableBackups.includes(b.id),
  );
  const starts = [...ranges.map((r) => r.from), ...onPath.map((b) => Date.parse(b.startTime))];
  if (starts.length === 0) return [];
  const from = Math.min(...starts);
  if (!(from < now)) return [];
  const step = (now - from) / width;
  const archivedUntil =
    window.archiveEnd?.time === undefined ? undefined : Date.parse(window.archiveEnd.time);
  const gaps = window.gaps.map((g) => ({
    from: g.after === undefined ? from : Date.parse(g.after),
    to: g.before === undefined ? now : Date.parse(g.before),
  }));
  const cells: string[] = [];
  for (let c = 0; c < width; c++) {
    const lo = from + c * step;
    const hi = lo + step;
    const mid = lo + step / 2;
    if (gaps.some((g) => g.from < hi && g.to > lo)) cells.push("x");
    else if (ranges.some((r) => r.from <= mid && (r.to ?? archivedUntil ?? now) >= mid))
      cells.push("=");
    else if (archivedUntil !== undefined && mid <= archivedUntil) cells.push("-");
    else if (mid >= (archivedUntil ?? from)) cells.push(".");
    else cells.push(" ");
  }
  const markCells: string[] = Array.from({ length: width }, () => " ");
  const place = (iso: string, mark: string, strong: boolean) => {
    const at = Date.parse(iso);
    if (!(at >= from && at <= now)) return;
    const c = Math.min(width - 1, Math.floor((at - from) / step));
    // A failure is never hidden under a success in the same column.
    if (strong || markCells[c] === " ") markCells[c] = mark;
  };
  for (const b of onPath)
    place(b.stopTime, window.unrestorableBackups.includes(b.id) ? "!" : "B", false);
  for (const d of marks.dumps) place(d.stopTime, "D", false);
  for (const r of marks.drills) place(r.finishedAt, r.passed ? "✓" : "✗", !r.passed);
  const label = `  timeline ${window.timeline} `;
  const pad = " ".repeat(label.length);
  const left = short(new Date(from).toISOString());
  return [
    `${label}|${cells.join("")}| now`,
    `${pad} ${markCells.join("")}`.trimEnd(),
    `${pad}${left}${" ".repeat(Math.max(1, width + 2 - left.length - 3))}now`,
  ];
}

/** Why the newest backup is not restorable, for the status line. */
function notRestorable(b: LastBackup): string {
  if (b.chainLacks !== null)
    return `NOT restorable (it needs backup ${b.chainLacks} of its chain, which is missing or damaged)`;
  if (b.verifyFailed.length > 0)
    return `NOT restorable (the last verify of ${b.verifyFailed.join(", ")} FAILED)`;
  return "NOT restorable (its WAL is incomplete)";
}
