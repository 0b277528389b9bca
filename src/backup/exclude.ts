/**
 * What a base backup leaves out, as PostgreSQL's documentation ("Backing Up the Data
 * Directory") and pg_basebackup do. Pure functions over relative paths.
 */

import { PG_CONTROL_WRITING, RESTORE_MARKER } from "./pg-control-last.js";

/** Directories kept, but empty: their contents are rebuilt or not needed on restore. */
const EMPTY_DIRS = new Set([
  "pg_wal",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans",
]);

/** Top-level files left out. The signal files are left out so that a restore decides. */
const TOP_FILES = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "backup_label",
  "backup_label.old",
  "tablespace_map",
  "tablespace_map.old",
  "backup_manifest",
  "postgresql.auto.conf.tmp",
  "current_logfiles.tmp",
  "recovery.signal",
  "standby.signal",
  // PostgreSQL 11 and older: a standby's recovery settings; a restore writes its own.
  "recovery.conf",
  "recovery.done",
]);

/** Whether the contents of this data-directory subdirectory are left out. */
export function isEmptiedDirectory(relPath: string): boolean {
  return EMPTY_DIRS.has(relPath);
}

/** Whether a file or directory (by path relative to its tablespace root) is left out. */
export function isExcluded(relPath: string, isDataDirectory: boolean): boolean {
  const name = relPath.slice(relPath.lastIndexOf("/") + 1);
  if (name.startsWith("pgsql_tmp")) return true; // temporary files and directories
  if (name.startsWith("pg_internal.init")) return true; // relcache init files, rebuilt
  if (isDataDirectory && !relPath.includes("/") && TOP_FILES.has(name)) return true;
  // What a restore killed part way left (pg-control-last.ts).
  if (isDataDirectory && (relPath === PG_CONTROL_WRITING || relPath === RESTORE_MARKER))
    return true;
  return false;
}

const RELATION_FILE = /^(\d+)(?:_(fsm|vm|init))?(?:\.\d+)?$/;
const TEMP_RELATION = /^t\d+_\d+(?:_(fsm|vm|init))?(?:\.\d+)?$/;

/**
 * Files of one database directory to leave out: temporary relations, and the main, fsm
 * and vm forks of unlogged relations (their _init fork is kept; PostgreSQL resets them
 * from it at recovery).
 */
export function excludedRelationFiles(names: readonly string[]): Set<string> {
  const unlogged = new Set<string>();
  for (const name of names) {
    const match = RELATION_FILE.exec(name);
    if (match?.[2] === "init") unlogged.add(match[1] ?? "");
  }
  const out = new Set<string>();
  for (const name of names) {
    if (TEMP_RELATION.test(name)) {
      out.add(name);
      continue;
    }
    const match = RELATION_FILE.exec(name);
    if (match && unlogged.has(match[1] ?? "") && match[2] !== "init") out.add(name);
  }
  return out;
}

/** base/<db> in the data directory, <version dir>/<db> in a tablespace. */
export function isDatabaseDirectory(relPath: string, isDataDirectory: boolean): boolean {
  const parts = relPath.split("/");
  return (
    parts.length === 2 &&
    /^\d+$/.test(parts[1] ?? "") &&
    (isDataDirectory ? parts[0] === "base" : true)
  );
}
