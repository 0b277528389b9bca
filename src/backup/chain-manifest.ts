/**
 * The fields incremental backups add to a manifest (FORMAT.md, "Incremental backups"), as
 * the restore side reads them. A manifest written before them has none: it is a full,
 * every file stored whole.
 */
import type { BackupFileEntry, BackupManifest } from "../repository/backup-manifest.js";

export interface BlockMap {
  /** Block size in bytes (8192). */
  size: number;
  /** base64 of the first 16 bytes of each block's sha256. */
  hashes: string;
  /** base64, one byte per block: the index into [...chain, id] of the backup holding it. */
  from: string;
}

export type ChainFileEntry = BackupFileEntry & {
  stored?: "whole" | "blocks" | "none";
  from?: string;
  blocks?: BlockMap;
};

export type ChainManifest = Omit<BackupManifest, "format" | "files"> & {
  format: number;
  type?: "full" | "incr";
  parent?: string | null;
  chain?: string[];
  files: ChainFileEntry[];
};

/** The ids of the backups a backup needs besides itself, oldest first. */
export function chainIds(manifest: BackupManifest): string[] {
  const chain = (manifest as unknown as ChainManifest).chain;
  return Array.isArray(chain) ? chain : [];
}

export function filesOf(manifest: BackupManifest): ChainFileEntry[] {
  return manifest.files as ChainFileEntry[];
}

/** The key of a file in keep sets and plans: "base/global/pg_control", "16384/PG_15_.../1/2". */
export function fileKey(file: { part: string; path: string }): string {
  return `${file.part}/${file.path}`;
}

/** Bytes 16*k .. 16*k+16 of a block map's hashes: block k's hash. */
export const BLOCK_HASH_BYTES = 16;

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}
