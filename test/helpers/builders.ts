/**
 * Builders for repository documents and walk entries in unit tests: a complete value,
 * with what the test cares about given.
 */
import type { WalkEntry } from "../../src/backup/walk.js";
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

/** A manifest of these objects and files, its byte counts summed over the objects. */
export function makeManifestOf(
  objects: BackupManifest["objects"],
  files: BackupManifest["files"],
): BackupManifest {
  return makeBackupManifest({
    rawBytes: objects.reduce((s, o) => s + o.rawSize, 0),
    storedBytes: objects.reduce((s, o) => s + o.storedSize, 0),
    objects,
    files,
  });
}

const mtime = new Date("2026-11-21T12:00:00Z");

/** A regular file of a walk (mode 0600). */
export function fileEntry(path: string, size: number): WalkEntry {
  return { path, type: "file", size, mode: 0o600, mtime };
}

/** A directory of a walk (mode 0700). */
export function dirEntry(path: string): WalkEntry {
  return { path, type: "directory", size: 0, mode: 0o700, mtime };
}
