/**
 * What `pgha verify` reports: one finding per problem, naming the object (a key, a WAL
 * name or range, a backup id), and the exit code the findings add up to.
 */
import type { ExitCodeName } from "../errors.js";

export type FindingKind =
  /** WAL segments missing inside the point-in-time window of a timeline path. */
  | "wal-gap"
  /** A WAL name stored with different contents (two servers archived one timeline). */
  | "wal-conflict"
  /** A timeline's WAL continues past where a child timeline branched off it. */
  | "wal-fork"
  /** A history file that is unreadable, malformed or disagrees with its parent's. */
  | "history"
  /** WAL of a timeline above 1 with no history file: no recovery can follow it. */
  | "timeline-without-history"
  /** A backup whose WAL from its start to its end is not all archived. */
  | "unrestorable"
  /** A manifest that cannot be read or verified. */
  | "manifest"
  /** An object a manifest lists, or a WAL object, that is not in the repository. */
  | "missing"
  /** Stored size differs from the manifest's. */
  | "size"
  /** The bytes read do not hash to the recorded sha256 (or do not decompress). */
  | "checksum"
  /** Objects of a backup or dump set with no manifest, or of writes that died (a warning). */
  | "unfinished";

export interface Finding {
  kind: FindingKind;
  /** "error" makes verify fail; a "warning" is worth a look but restores are not affected. */
  severity: "error" | "warning";
  /** What is wrong: an object key, a WAL name or range, a backup or dump-set id. */
  object: string;
  /** The backup or dump set it belongs to, when it belongs to one. */
  backup?: string;
  dumpSet?: string;
  timeline?: number;
  message: string;
}

/** Damaged stored data: exit 6. The rest (WAL gaps, unrestorable backups): exit 11. */
const INTEGRITY: ReadonlySet<FindingKind> = new Set([
  "wal-conflict",
  "history",
  "manifest",
  "missing",
  "size",
  "checksum",
]);

/**
 * The exit code of a verify run: integrity (6) when any stored object is damaged or
 * missing from its manifest (the findings list any gaps too), else unrestorable (11)
 * when WAL is missing from the window or a backup cannot be restored, else ok.
 */
export function verifyExit(findings: readonly Finding[]): ExitCodeName {
  const errors = findings.filter((f) => f.severity === "error");
  if (errors.some((f) => INTEGRITY.has(f.kind))) return "integrity";
  if (errors.length > 0) return "unrestorable";
  return "ok";
}
