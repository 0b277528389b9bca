/**
 * The parent's manifest entries, looked up by part and path while an incremental backup
 * hands its bundles to the jobs: one Map of references into the parent's manifest (read
 * once), and per bundle only the entries of its own files cross to a job thread.
 */
import type { BackupFileEntry, BackupManifest } from "../repository/backup-manifest.js";
import type { ParentFile } from "./pack-bundle.js";
import type { WalkEntry } from "./walk.js";

export type ParentLookup = (part: string, entries: readonly WalkEntry[]) => (ParentFile | null)[];

export function indexParentFiles(parent: BackupManifest): ParentLookup {
  const byPath = new Map<string, BackupFileEntry>();
  for (const file of parent.files) byPath.set(`${file.part}/${file.path}`, file);
  return (part, entries) =>
    entries.map((entry) => {
      const found = entry.type === "file" ? byPath.get(`${part}/${entry.path}`) : undefined;
      return found ? parentFileOf(found, parent.id) : null;
    });
}

/** What a job compares a file with; `holder` is resolved here, never by a chain walk. */
export function parentFileOf(file: BackupFileEntry, parentId: string): ParentFile {
  return {
    size: file.size,
    sha256: file.sha256,
    holder: file.stored === "none" && file.from !== undefined ? file.from : parentId,
    ...(file.blocks ? { blocks: { hashes: file.blocks.hashes, from: file.blocks.from } } : {}),
  };
}
