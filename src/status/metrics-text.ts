/**
 * The status as Prometheus metrics, in the text exposition format (version 0.0.4). Pure.
 *
 * Written by hand rather than with a client library: pgha renders a snapshot of values it
 * already has, once per call or scrape; it instruments no process. prom-client would bring
 * a global registry, collectors and async collect callbacks for what is ~50 lines of
 * escaping and grouping here. Every family is written once (HELP, TYPE, then its samples,
 * one per cluster or timeline), only with the samples whose values are known.
 */
import type { ClusterStatus } from "./plan-status.js";

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: { labels: Labels; value: number }[];
}

const seconds = (iso: string | undefined) =>
  iso === undefined ? undefined : Date.parse(iso) / 1000;
const flag = (b: boolean) => (b ? 1 : 0);

/** Each family: its name, help, type and the value it takes from one cluster's status. */
const CLUSTER_METRICS: {
  name: string;
  help: string;
  type?: "counter";
  value: (s: ClusterStatus) => number | undefined;
}[] = [
  {
    name: "pgha_status_timestamp_seconds",
    help: "When pgha read the repository for these metrics (unix seconds).",
    value: (s) => seconds(s.checkedAt),
  },
  {
    name: "pgha_wal_last_archived_timestamp_seconds",
    help: "When the newest archived WAL segment was pushed (the database host's clock; the store's for segments from an older pgha).",
    value: (s) => seconds(s.lastArchived?.time),
  },
  {
    name: "pgha_wal_last_archived_age_seconds",
    help: "Age of the newest archived WAL segment when the metrics were made: the RPO.",
    value: (s) => s.lastArchived?.ageSeconds,
  },
  {
    name: "pgha_server_up",
    help: "Whether the PostgreSQL server answered (1) or not (0).",
    value: (s) => (s.server ? flag(s.server.reachable) : undefined),
  },
  {
    name: "pgha_archive_ready_files",
    help: "WAL files the server marked .ready that are not archived yet (the archive backlog).",
    value: (s) => s.server?.ready?.files,
  },
  {
    name: "pgha_archive_ready_bytes",
    help: "Bytes of the WAL files marked .ready.",
    value: (s) => s.server?.ready?.bytes,
  },
  {
    name: "pgha_archive_archived_total",
    help: "WAL files archived since the server's statistics were reset (pg_stat_archiver.archived_count).",
    type: "counter",
    value: (s) => s.server?.archiver?.archivedCount,
  },
  {
    name: "pgha_archive_failed_total",
    help: "Failed archive_command runs since the statistics were reset (pg_stat_archiver.failed_count).",
    type: "counter",
    value: (s) => s.server?.archiver?.failedCount,
  },
  {
    name: "pgha_archive_last_failed_timestamp_seconds",
    help: "When archive_command last failed (pg_stat_archiver.last_failed_time).",
    value: (s) => seconds(s.server?.archiver?.lastFailedTime ?? undefined),
  },
  {
    name: "pgha_async_archiver_running",
    help: "Whether the asynchronous archiver's status.json says it runs.",
    value: (s) => (s.server?.spool ? flag(s.server.spool.running) : undefined),
  },
  {
    name: "pgha_async_archiver_backlog_files",
    help: "Files the running asynchronous archiver has yet to store (absent when none runs: a stopped one's last count would go stale; pgha_archive_ready_files counts what waits).",
    value: (s) => (s.server?.spool?.running ? s.server.spool.backlog.files : undefined),
  },
  {
    name: "pgha_async_archiver_backlog_bytes",
    help: "Bytes the running asynchronous archiver has yet to store (absent when none runs).",
    value: (s) => (s.server?.spool?.running ? s.server.spool.backlog.bytes : undefined),
  },
  {
    name: "pgha_backups",
    help: "Base backups in the repository.",
    value: (s) => s.backups,
  },
  {
    name: "pgha_backup_last_timestamp_seconds",
    help: "When the newest base backup ended.",
    value: (s) => seconds(s.lastBackup?.stopTime),
  },
  {
    name: "pgha_backup_last_duration_seconds",
    help: "How long the newest base backup took.",
    value: (s) => s.lastBackup?.durationSeconds,
  },
  {
    name: "pgha_backup_last_bytes",
    help: "Size of the newest base backup's files.",
    value: (s) => s.lastBackup?.rawBytes,
  },
  {
    name: "pgha_backup_last_stored_bytes",
    help: "Bytes the newest base backup stores in the repository.",
    value: (s) => s.lastBackup?.storedBytes,
  },
  {
    name: "pgha_backup_last_restorable",
    help: "Whether the newest base backup can be restored: the WAL it needs to reach consistency is archived, every backup of its chain is there, its last verify did not fail and that of no backup of its chain found its data damaged (1) or not (0).",
    value: (s) => (s.lastBackup ? flag(s.lastBackup.restorable) : undefined),
  },
  {
    name: "pgha_dump_sets",
    help: "Dump sets in the repository.",
    value: (s) => s.dumps,
  },
  {
    name: "pgha_dump_last_timestamp_seconds",
    help: "When the newest dump set ended.",
    value: (s) => seconds(s.lastDump?.stopTime),
  },
  {
    name: "pgha_dump_last_duration_seconds",
    help: "How long the newest dump set took.",
    value: (s) => s.lastDump?.durationSeconds,
  },
  {
    name: "pgha_dump_last_stored_bytes",
    help: "Bytes the newest dump set stores in the repository.",
    value: (s) => s.lastDump?.storedBytes,
  },
  {
    name: "pgha_drills",
    help: "Restore drill reports in the repository.",
    value: (s) => s.drills,
  },
  {
    name: "pgha_drill_last_timestamp_seconds",
    help: "When the newest restore drill ended.",
    value: (s) => seconds(s.lastDrill?.stopTime),
  },
  {
    name: "pgha_drill_last_success",
    help: "Whether the newest restore drill passed (1) or failed (0).",
    value: (s) => (s.lastDrill ? flag(s.lastDrill.passed) : undefined),
  },
  {
    name: "pgha_drill_last_rto_seconds",
    help: "How long the newest restore drill took from plan to checks: the measured recovery time.",
    value: (s) => s.lastDrill?.rtoSeconds,
  },
  {
    name: "pgha_drill_last_passed_timestamp_seconds",
    help: "When the newest restore drill that passed ended.",
    value: (s) => seconds(s.lastPassedDrill?.stopTime),
  },
];

export function renderMetrics(statuses: ClusterStatus[]): string {
  const families: Family[] = CLUSTER_METRICS.map(({ name, help, type, value }) => ({
    name,
    help,
    type: type ?? "gauge",
    samples: statuses.flatMap((s) => {
      const v = value(s);
      return v === undefined ? [] : [{ labels: { cluster: s.cluster }, value: v }];
    }),
  }));
  const perTimeline = (
    name: string,
    help: string,
    value: (w: ClusterStatus["timelines"][number]) => number | undefined,
  ): Family => ({
    name,
    help,
    type: "gauge",
    samples: statuses.flatMap((s) =>
      s.timelines.flatMap((w) => {
        const v = value(w);
        const labels = { cluster: s.cluster, timeline: String(w.timeline) };
        return v === undefined ? [] : [{ labels, value: v }];
      }),
    ),
  });
  families.push(
    perTimeline(
      "pgha_pitr_window_start_timestamp_seconds",
      "The oldest time a point-in-time recovery along the timeline can reach.",
      (w) => seconds(w.start),
    ),
    perTimeline(
      "pgha_pitr_window_end_timestamp_seconds",
      "The newest time a point-in-time recovery along the timeline can reach (an upper bound).",
      (w) => seconds(w.end),
    ),
    perTimeline(
      "pgha_pitr_window_gaps",
      "Runs of missing WAL segments on the timeline's path, from its oldest backup on.",
      (w) => w.gaps.length,
    ),
    perTimeline(
      "pgha_wal_missing_segments",
      "Missing WAL segments on the timeline's path, from its oldest backup on.",
      (w) => w.gaps.reduce((sum, g) => sum + g.count, 0),
    ),
    {
      name: "pgha_repository_bytes",
      help: "Bytes the repository stores for the cluster, by kind (wal, backups, dumps, other).",
      type: "gauge",
      samples: statuses.flatMap((s) =>
        Object.entries(s.repositoryBytes).map(([kind, value]) => ({
          labels: { cluster: s.cluster, kind },
          value,
        })),
      ),
    },
  );
  return families
    .filter((f) => f.samples.length > 0)
    .map(renderFamily)
    .join("");
}

function renderFamily(family: Family): string {
  const lines = [
    `# HELP ${family.name} ${escapeHelp(family.help)}`,
    `# TYPE ${family.name} ${family.type}`,
  ];
  for (const { labels, value } of family.samples) {
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    lines.push(`${family.name}${text ? `{${text}}` : ""} ${formatValue(value)}`);
  }
  return `${lines.join("\n")}\n`;
}

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (text: string) =>
  text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}
