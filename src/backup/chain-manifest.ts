/**
 * Reading a manifest as the restore of a chain does (FORMAT.md, "Incremental backups"). A
 * manifest written before incremental backups has no chain: a full, every file whole.
 */
import { IntegrityError } from "../errors.js";
import type { BackupFileEntry, BackupManifest } from "../repository/backup-manifest.js";

export type ChainFileEntry = BackupFileEntry;

/** The ids of the backups a backup needs besides itself, oldest first. */
export function chainIds(manifest: BackupManifest): string[] {
  return Array.isArray(manifest.chain) ? manifest.chain : [];
}

/**
 * The first backup of `manifest`'s chain that `present` (ids of the backups whose manifests
 * were read) lacks: an incremental backup restores only with its whole chain.
 */
export function missingChainMember(
  manifest: BackupManifest,
  present: { has(id: string): boolean },
): string | undefined {
  return chainIds(manifest).find((id) => !present.has(id));
}

export function filesOf(manifest: BackupManifest): ChainFileEntry[] {
  return manifest.files;
}

/** The key of a file in keep sets and plans: "base/global/pg_control", "16384/PG_15_.../1/2". */
export function fileKey(file: { part: string; path: string }): string {
  return `${file.part}/${file.path}`;
}

export { BLOCK_HASH_BYTES } from "./block-map.js";
export { blockCount } from "./delta-entry.js";

type Span = Pick<BackupManifest, "id" | "startLsn" | "stopLsn">;

/** A backup read for the restore must be the one the plan chose (same start and stop). */
export function checkAsPlanned(planned: Span, read: Span): void {
  if (planned.startLsn !== read.startLsn || planned.stopLsn !== read.stopLsn)
    throw new IntegrityError(
      `backup ${planned.id} changed while the restore was planned`,
      "the repository changed during the restore (a backup, prune or delete ran?): run the restore again",
    );
}
