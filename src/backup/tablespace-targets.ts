/**
 * Where a backup's tablespaces are restored, and what may be written there. A manifest
 * comes from the repository, which pgha does not fully trust with the restoring host: a
 * tablespace location outside the target is used only
 * - as the user's --tablespace-map names it, or
 * - by default, as the original cluster's layout: the manifest's location, when it is a
 *   plain absolute path (normalized, not `/`, no control characters) whose parent
 *   directory exists already on this host. pgha creates that one directory at most, never
 *   a chain of parents.
 * Either way no location may be, contain or lie inside the data directory or another
 * tablespace's, and a tablespace's tar may only hold its version directory
 * (PG_15_202209061/...): see unpack-bundle.ts.
 */
import { stat } from "node:fs/promises";
import { dirname, isAbsolute, normalize } from "node:path";
import { IntegrityError, UsageError } from "../errors.js";
import type { BackupManifest, BackupTablespace } from "../repository/backup-manifest.js";

export interface TablespaceTarget extends BackupTablespace {
  /** Whether --tablespace-map chose the location (else it is the original one). */
  mapped: boolean;
}

/** The first path component of every entry of a tablespace's tar. */
export const VERSION_DIRECTORY = /^PG_[0-9.]+_[0-9]+$/;

const inside = (path: string, dir: string) =>
  path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);

/**
 * Pure: each tablespace's location (mapped or original), checked; throws what is wrong.
 * `root`, the data directory, may be unknown yet (restore plan without --pgdata).
 */
export function planTablespaceTargets(
  manifest: Pick<BackupManifest, "id" | "tablespaces">,
  root: string | undefined,
  remap: ReadonlyMap<string, string>,
): TablespaceTarget[] {
  for (const key of remap.keys()) {
    if (!manifest.tablespaces.some((ts) => ts.oid === key || ts.name === key)) {
      throw new UsageError(
        `--tablespace-map names '${key}', which is not a tablespace of backup ${manifest.id}`,
        `its tablespaces: ${manifest.tablespaces.map((ts) => `${ts.name} (${ts.oid})`).join(", ") || "none"}`,
      );
    }
  }
  const targets: TablespaceTarget[] = [];
  for (const ts of manifest.tablespaces) {
    if (typeof ts !== "object" || ts === null || !/^\d+$/.test(String(ts.oid)))
      throw new IntegrityError(`backup ${manifest.id} names a tablespace with oid '${ts?.oid}'`);
    const mappedTo = remap.get(ts.oid) ?? remap.get(ts.name);
    const location = mappedTo ?? ts.location;
    const mapTo = `give it a directory with --tablespace-map ${ts.name}=DIR`;
    if (
      mappedTo === undefined &&
      (typeof location !== "string" ||
        !isAbsolute(location) ||
        normalize(location) !== location ||
        location === "/" ||
        location.endsWith("/") ||
        // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
        /[\u0000-\u001f\u007f]/.test(location))
    ) {
      throw new IntegrityError(
        `backup ${manifest.id} gives tablespace ${ts.name} (${ts.oid}) the location ${JSON.stringify(location)}, which no tablespace can have`,
        mapTo,
      );
    }
    for (const other of [
      ...(root === undefined ? [] : [root]),
      ...targets.map((t) => t.location),
    ]) {
      if (inside(location, other) || inside(other, location)) {
        throw new UsageError(
          `tablespace ${ts.name} (${ts.oid}) would be restored into ${location}, which overlaps ${other}`,
          mapTo,
        );
      }
    }
    targets.push({ oid: ts.oid, name: ts.name, location, mapped: mappedTo !== undefined });
  }
  return targets;
}

/** The default's condition on this host: an original location's parent directory exists. */
export async function checkOriginalLocations(targets: readonly TablespaceTarget[]): Promise<void> {
  for (const ts of targets) {
    if (ts.mapped) continue;
    const parent = dirname(ts.location);
    const isDirectory = await stat(parent).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDirectory) {
      throw new UsageError(
        `tablespace ${ts.name} (${ts.oid}) goes back to ${ts.location}, but ${parent} is not a directory on this host; nothing was written`,
        `pgha creates no directories above an original tablespace location: give it one with --tablespace-map ${ts.name}=DIR`,
      );
    }
  }
}
