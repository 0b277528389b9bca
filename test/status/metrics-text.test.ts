/** renderMetrics (pure): the status as Prometheus text, read back by a strict parser. */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { renderMetrics } from "../../src/status/metrics-text.js";
import { planStatus } from "../../src/status/plan-status.js";
import { parsePromText } from "../helpers/prom-text.js";
import { at, backup, clusterFacts, drill, dump, gappedWal, seg } from "../helpers/status-facts.js";

const NOW = Date.parse(at("13:00"));
const sec = (hhmm: string) => Date.parse(at(hhmm)) / 1000;

function statuses() {
  const main = planStatus(
    clusterFacts(
      [
        backup("20261201T100000Z", 1, 2, 3, at("10:05")),
        backup("20261201T113000Z", 1, 8, 8, at("11:35")),
      ],
      gappedWal(),
      {
        drills: [drill("d1", at("12:00"), true)],
        dumps: [dump("20261201T120000Z", at("12:00"))],
        server: {
          reachable: true,
          archiver: {
            archivedCount: 12,
            lastArchivedWal: seg(1, 10),
            lastArchivedTime: at("12:30"),
            failedCount: 3,
            lastFailedWal: seg(1, 11),
            lastFailedTime: at("12:55"),
          },
          ready: { files: 2, bytes: 2 * 16 * 2 ** 20 },
          notes: [],
        },
      },
    ),
    NOW,
  );
  // A label value with every character that needs escaping.
  const odd = planStatus({ ...clusterFacts([], []), cluster: 'a"b\\c\nd' }, NOW);
  return [main, odd];
}

/** The value of a family's sample whose labels include these. */
function sampleValue(text: string, name: string, labels: Record<string, string> = {}) {
  const family = parsePromText(text).get(name);
  return family?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

describe("renderMetrics", () => {
  it("is read the same by a third-party parser (parse-prometheus-text-format)", () => {
    const text = renderMetrics(statuses());
    const ours = parsePromText(text);
    const theirs = parsePrometheusTextFormat(text);
    expect(theirs.map((f) => f.name).sort()).toEqual([...ours.keys()].sort());
    for (const family of theirs) {
      const mine = ours.get(family.name);
      expect(family.type.toLowerCase()).toBe(mine?.type);
      expect(family.help).toBe(mine?.help);
      const values = family.metrics.map((m) => ({
        labels: m.labels ?? {},
        value: Number(m.value),
      }));
      expect(values).toEqual(mine?.samples.map((x) => ({ labels: x.labels, value: x.value })));
    }
  });

  it("writes every family once, with HELP and TYPE, under the pgha_ prefix", () => {
    const text = renderMetrics(statuses());
    const families = parsePromText(text);
    expect(families.size).toBeGreaterThan(20);
    for (const family of families.values()) {
      expect(family.name).toMatch(/^pgha_/);
      expect(family.help).toBeTruthy();
      expect(family.type === "counter" ? family.name : "").toMatch(/^$|_total$/);
      expect(family.samples.length).toBeGreaterThan(0);
    }
  });

  it("pgha_backup_last_restorable is 0 when the newest backup's chain lacks a backup", () => {
    const full = backup("20261201T113000Z", 1, 8, 8, at("11:35"));
    const incr = { ...backup("20261201T115000Z", 1, 9, 9, at("11:55")), type: "incr" as const };
    const chained = { ...incr, parent: "20261201T114000Z", chain: [full.id, "20261201T114000Z"] };
    const text = renderMetrics([planStatus(clusterFacts([full, chained], gappedWal()), NOW)]);
    expect(sampleValue(text, "pgha_backup_last_restorable", { cluster: "main" })).toBe(0);
    const whole = { ...incr, parent: full.id, chain: [full.id] };
    const sound = renderMetrics([planStatus(clusterFacts([full, whole], gappedWal()), NOW)]);
    expect(sampleValue(sound, "pgha_backup_last_restorable", { cluster: "main" })).toBe(1);
  });

  it("exposes the RPO, the backlog, the window and the newest backup, dump set and drill", () => {
    const text = renderMetrics(statuses());
    const main = { cluster: "main" };
    expect(sampleValue(text, "pgha_wal_last_archived_age_seconds", main)).toBe(1800);
    expect(sampleValue(text, "pgha_wal_last_archived_timestamp_seconds", main)).toBe(sec("12:30"));
    expect(sampleValue(text, "pgha_archive_ready_files", main)).toBe(2);
    expect(sampleValue(text, "pgha_archive_ready_bytes", main)).toBe(32 * 2 ** 20);
    expect(sampleValue(text, "pgha_archive_failed_total", main)).toBe(3);
    expect(sampleValue(text, "pgha_server_up", main)).toBe(1);
    const tl1 = { cluster: "main", timeline: "1" };
    expect(sampleValue(text, "pgha_pitr_window_start_timestamp_seconds", tl1)).toBe(sec("10:05"));
    expect(sampleValue(text, "pgha_pitr_window_end_timestamp_seconds", tl1)).toBe(sec("12:30"));
    expect(sampleValue(text, "pgha_pitr_window_gaps", tl1)).toBe(1);
    expect(sampleValue(text, "pgha_wal_missing_segments", tl1)).toBe(2);
    expect(sampleValue(text, "pgha_backup_last_timestamp_seconds", main)).toBe(sec("11:35"));
    expect(sampleValue(text, "pgha_backup_last_duration_seconds", main)).toBe(120);
    expect(sampleValue(text, "pgha_backup_last_stored_bytes", main)).toBe(1000);
    expect(sampleValue(text, "pgha_backup_last_restorable", main)).toBe(1);
    expect(sampleValue(text, "pgha_dump_last_timestamp_seconds", main)).toBe(sec("12:00"));
    expect(sampleValue(text, "pgha_dump_last_stored_bytes", main)).toBe(200);
    expect(sampleValue(text, "pgha_drill_last_success", main)).toBe(1);
    expect(sampleValue(text, "pgha_drill_last_rto_seconds", main)).toBe(42.5);
    expect(sampleValue(text, "pgha_repository_bytes", { cluster: "main", kind: "wal" })).toBe(900);
    expect(sampleValue(text, "pgha_repository_bytes", { cluster: "main", kind: "backups" })).toBe(
      2000,
    );
  });

  it("gives the async archiver's backlog only while it runs (a stopped one's goes stale)", () => {
    const withSpool = (running: boolean) =>
      renderMetrics([
        planStatus(
          clusterFacts([], [], {
            server: {
              reachable: true,
              notes: [],
              spool: {
                running,
                updatedAt: at("12:59"),
                backlog: { files: 1, bytes: 16 * 2 ** 20, oldest: null },
                overLimit: false,
                stored: 5,
                lastStored: null,
                lastError: null,
              },
            },
          }),
          NOW,
        ),
      ]);
    const main = { cluster: "main" };
    expect(sampleValue(withSpool(true), "pgha_async_archiver_backlog_files", main)).toBe(1);
    expect(sampleValue(withSpool(true), "pgha_async_archiver_running", main)).toBe(1);
    expect(sampleValue(withSpool(false), "pgha_async_archiver_backlog_files", main)).toBe(
      undefined,
    );
    expect(sampleValue(withSpool(false), "pgha_async_archiver_running", main)).toBe(0);
  });

  it("leaves out what is unknown, and escapes label values", () => {
    const text = renderMetrics(statuses());
    const odd = { cluster: 'a"b\\c\nd' };
    expect(text).toContain('cluster="a\\"b\\\\c\\nd"');
    expect(sampleValue(text, "pgha_backups", odd)).toBe(0);
    expect(sampleValue(text, "pgha_wal_last_archived_age_seconds", odd)).toBeUndefined();
    expect(sampleValue(text, "pgha_server_up", odd)).toBeUndefined();
    expect(renderMetrics([])).toBe("");
  });
});

describe("the strict parser the metrics tests rely on", () => {
  it.each([
    ["no final newline", "# TYPE a gauge\na 1"],
    ["a duplicate series", 'a{x="1"} 1\na{x="1"} 2\n'],
    ["TYPE after samples", "a 1\n# TYPE a gauge\n"],
    ["a family split apart", 'a 1\nb 1\na{x="2"} 1\n'],
    ["a bad escape", 'a{x="\\t"} 1\n'],
    ["a bad value", "a one\n"],
    ["a bad name", "1a 1\n"],
    ["an unknown type", "# TYPE a gauges\n"],
  ])("rejects %s", (_, text) => {
    expect(() => parsePromText(text)).toThrow();
  });
});
