/**
 * Builders for repository documents and walk entries in unit tests: a complete value,
 * with what the test cares about given.
 */
import type { WalkEntry } from "../../src/backup/walk.js";
import type { EncryptionSettings } from "../../src/config/load.js";
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

/** The name of segment n of timeline tl (16 MiB segments, log 0). */
export const seg = (tl: number, n: number) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;

/** An LSN inside segment n. */
export const lsnOf = (n: number, offset = 0x28) =>
  `0/${(n * 0x1000000 + offset).toString(16).toUpperCase()}`;

/** A backup of timeline tl that starts in segment `start` and stops in segment `stop`. */
export function backupOverSegments(
  id: string,
  tl: number,
  start: number,
  stop: number,
  over: Partial<BackupManifest> = {},
): BackupManifest {
  return makeBackupManifest({
    id,
    timeline: tl,
    startWal: seg(tl, start),
    stopWal: seg(tl, stop),
    startLsn: lsnOf(start),
    stopLsn: lsnOf(stop, 0x100),
    ...over,
  });
}

/** Encryption settings with nothing set but `over`. */
export function encryptionSettings(over: Partial<EncryptionSettings>): EncryptionSettings {
  return {
    recipients: undefined,
    identityFile: undefined,
    passphraseFile: undefined,
    passphrase: undefined,
    ...over,
  };
}
