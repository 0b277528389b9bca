/**
 * Status facts for unit tests: backups, WAL segments, drills and dump sets of cluster
 * "main" on 2026-12-01, at times written as hh:mm.
 */
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import type { DrillReport } from "../../src/repository/drill-report.js";
import type { DumpManifest } from "../../src/repository/dump-manifest.js";
import type { WalObject } from "../../src/restore/facts.js";
import type { ClusterFacts } from "../../src/status/plan-status.js";
import { backupOverSegments, lsnOf, seg } from "./builders.js";

export { lsnOf, seg };
/** 2026-12-01 at hh:mm UTC. */
export const at = (hhmm: string) => `2026-12-01T${hhmm}:00.000Z`;

export function backup(id: string, tl: number, start: number, stop: number, stopTime: string) {
  return backupOverSegments(id, tl, start, stop, {
    startTime: new Date(Date.parse(stopTime) - 120_000).toISOString(),
    stopTime,
    rawBytes: 5000,
    storedBytes: 1000,
  });
}

/** Segments n of timeline tl, each stored at its time; the newest one carries a push time. */
export function clusterFacts(
  backups: BackupManifest[],
  wal: [tl: number, n: number, storedAt: string, pushedAt?: string][],
  more: Partial<ClusterFacts> = {},
  histories: [number, string][] = [],
): ClusterFacts {
  const map = new Map<string, WalObject>();
  for (const [tl, n, storedAt, pushedAt] of wal)
    map.set(seg(tl, n), { name: seg(tl, n), size: 100, storedAt, pushedAt });
  return {
    cluster: "main",
    restore: { backups, histories: new Map(histories), wal: map, listedAt: at("13:00") },
    dumps: [],
    drills: [],
    bytes: { wal: 900, backups: 2000, dumps: 0, other: 10 },
    ...more,
  };
}

export function drill(id: string, finishedAt: string, passed: boolean): DrillReport {
  return {
    format: 1,
    kind: "drill",
    id,
    cluster: "main",
    passed,
    startedAt: new Date(Date.parse(finishedAt) - 60_000).toISOString(),
    finishedAt,
    target: "latest",
    backup: "b",
    phases: { plan: 1, fetch: 2, start: 3, replay: 4, checks: 5, total: 42_500 },
    lastReplayedCommit: null,
    checks: [],
    error: passed ? null : "sql 1 failed",
  };
}

export function dump(id: string, stopTime: string): DumpManifest {
  const object = {
    key: "k",
    compression: "zstd" as const,
    rawSize: 300,
    sha256: "x",
    storedSize: 100,
  };
  return {
    format: 1,
    kind: "dump-set",
    id,
    cluster: "main",
    label: null,
    pinned: false,
    startTime: new Date(Date.parse(stopTime) - 30_000).toISOString(),
    stopTime,
    pgVersion: "15",
    pgVersionNum: 150000,
    systemIdentifier: "1",
    pgDumpVersion: "15",
    noRolePasswords: true,
    globals: object,
    databases: [{ ...object, name: "app", owner: "app", format: "custom" }],
  };
}

/** Segments 2..10 of timeline 1, stored every 15 minutes from 10:00; 5 and 6 missing. */
export function gappedWal(): [number, number, string, string?][] {
  const wal: [number, number, string, string?][] = [];
  for (let n = 2; n <= 10; n++) {
    if (n === 5 || n === 6) continue;
    const minutes = 10 * 60 + (n - 2) * 15;
    const time = at(
      `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`,
    );
    wal.push([1, n, time, n === 10 ? at("12:30") : undefined]);
  }
  return wal;
}
