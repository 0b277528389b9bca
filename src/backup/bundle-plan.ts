/**
 * How a backup's files are cut into bundles: each bundle is one tar object, built, stored
 * and later restored by one job, so N jobs work on N bundles at once. Pure functions.
 *
 * A bundle is a run of consecutive walk entries of one part (parents before children), so
 * extracting a part's bundles in order rebuilds it: what pgha versions that read one
 * object after the other rely on. A file is never split: a file larger than the bundle
 * size is a bundle of its own.
 */
import type { WalkEntry } from "./walk.js";

/** Raw bytes of file data after which a bundle is closed. */
export const BUNDLE_BYTES = 32 << 20;

export interface PartTree {
  /** "base" or a tablespace oid. */
  part: string;
  /** Absolute directory the entry paths are relative to. */
  root: string;
  entries: WalkEntry[];
}

export interface Bundle {
  part: string;
  root: string;
  /** Position among the part's bundles: part of the object key. */
  index: number;
  entries: WalkEntry[];
  /** Sum of the file sizes the walk saw. */
  bytes: number;
}

/** Every part cut into bundles of at most `limit` bytes of files (or one larger file). */
export function planBundles(trees: readonly PartTree[], limit = BUNDLE_BYTES): Bundle[] {
  const bundles: Bundle[] = [];
  for (const tree of trees) {
    let current: Bundle = { part: tree.part, root: tree.root, index: 0, entries: [], bytes: 0 };
    let files = 0;
    for (const entry of tree.entries) {
      const size = entry.type === "file" ? entry.size : 0;
      if (files > 0 && current.bytes + size > limit) {
        bundles.push(current);
        current = { ...current, index: current.index + 1, entries: [], bytes: 0 };
        files = 0;
      }
      current.entries.push(entry);
      current.bytes += size;
      if (entry.type === "file") files++;
    }
    bundles.push(current);
  }
  return bundles;
}

/**
 * The order jobs take bundles in: largest first, so that the last bundles to finish are
 * small ones and no job is left with a big one while the others idle.
 */
export function largestFirst<T>(items: readonly T[], size: (item: T) => number): T[] {
  return items
    .map((item, at) => ({ item, at }))
    .sort((a, b) => size(b.item) - size(a.item) || a.at - b.at)
    .map(({ item }) => item);
}
