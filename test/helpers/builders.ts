/** Builders for repository documents in unit tests: a complete value, with what the test cares about given. */
import type { BackupManifest } from "../../src/repository/backup-manifest.js";

/** A base backup manifest of cluster "main" on timeline 1 (PostgreSQL 15, 16 MiB segments). */
export function makeBackupManifest(over: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: 1,
    kind: "base-backup",
    id: "20261121T000000Z",
    cluster: "main",
    label: null,
    pinned: false,
    pgVersion: "15",
    pgVersionNum: 150000,
    systemIdentifier: "1",
    walSegmentSize: 16 << 20,
    timeline: 1,
    startLsn: "0/1",
    stopLsn: "0/2",
    startWal: "000000010000000000000001",
    stopWal: "000000010000000000000001",
    startTime: "",
    stopTime: "",
    fromStandby: false,
    compression: "zstd:3",
    rawBytes: 0,
    storedBytes: 0,
    tablespaces: [],
    objects: [],
    files: [],
    backupLabel: "",
    tablespaceMap: null,
    ...over,
  };
}
