/**
 * The parent's manifest entries, looked up by part and path while an incremental backup
 * hands its bundles to the jobs: one Map of what each job compares with (ParentFile), and
 * per bundle only the entries of its own files cross to a job thread.
 */
import type { BackupFileEntry, BackupManifest } from "../repository/backup-manifest.js";
import { blockCount } from "./delta-entry.js";
import type { MapSpill } from "./map-spill.js";
import type { ParentFile } from "./pack-bundle.js";
import { SAMPLED_FROM_BLOCKS } from "./pack-changed-blocks.js";
import type { WalkEntry } from "./walk.js";

export type ParentLookup = (part: string, entries: readonly WalkEntry[]) => (ParentFile | null)[];

/**
 * The index, filled entry by entry as the parent's manifest is read (readBackupManifest's
 * eachFile): only what a job compares with is kept of each entry, never the parent's file
 * list, which for 100,000 files cost an incremental backup tens of MB more than a full.
 */
export class ParentIndex {
  private readonly byPath = new Map<string, ParentFile>();
  /** Whether any entry has a block map (a parent taken by an older pgha has none). */
  hasBlockMaps = false;

  /** `spill`: where big maps wait (a job gets a copy in memory), else they stay here. */
  constructor(
    private readonly parentId: string,
    private readonly spill?: MapSpill,
  ) {}

  readonly add = (file: BackupFileEntry): void => {
    if (file.blocks) this.hasBlockMaps = true;
    const parent = parentFileOf(file, this.parentId);
    if (parent.blocks && this.spill) parent.blocks = this.spill.keep(parent.blocks);
    this.byPath.set(`${file.part}/${file.path}`, parent);
  };

  /** The entries a bundle's job compares with: their maps read back (they cross to a thread). */
  readonly lookup: ParentLookup = (part, entries) =>
    entries.map((entry) => {
      const parent = entry.type === "file" ? this.byPath.get(`${part}/${entry.path}`) : undefined;
      if (!parent) return null;
      return parent.blocks
        ? { ...parent, blocks: { hashes: parent.blocks.hashes, from: parent.blocks.from } }
        : parent;
    });
}

export function indexParentFiles(parent: BackupManifest): ParentLookup {
  const index = new ParentIndex(parent.id);
  for (const file of parent.files) index.add(file);
  return index.lookup;
}

/** What a job compares a file with; `holder` is resolved here, never by a chain walk. */
export function parentFileOf(file: BackupFileEntry, parentId: string): ParentFile {
  return {
    size: file.size,
    sha256: file.sha256,
    holder: file.stored === "none" && file.from !== undefined ? file.from : parentId,
    ...(file.blocks ? { blocks: { hashes: file.blocks.hashes, from: file.blocks.from } } : {}),
    ...(Number.isSafeInteger(file.changed) && (file.changed as number) >= 0
      ? { changed: file.changed }
      : {}),
    // Kept only where isHot may look at it (not for 100,000 small files).
    ...((file.changed !== undefined || blockCount(file.size) >= SAMPLED_FROM_BLOCKS) && file.blocks
      ? { mtime: file.mtime }
      : {}),
  };
}
