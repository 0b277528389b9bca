/**
 * A restore's global/pg_control is written under another name and put in place only once
 * every other file is written, checked and synced, the recovery configuration included
 * (putPgControlInPlace, the restore's last step): a restore killed half-way (kill -9,
 * power loss) leaves a data directory without pg_control, which no server starts, instead
 * of one that starts on half-written files. restore --delta also removes the existing
 * pg_control before it changes anything (assemble-backup.ts).
 */
import { type FileHandle, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isErrno, syncDirectory } from "../local-files.js";

export const PG_CONTROL = "global/pg_control";

/**
 * Written into the data directory before a restore writes anything else, removed just
 * before pg_control is put in place: a directory that has it holds a restore that did not
 * finish, which restore --delta finishes (restore/delta-target.ts). It names the backup
 * and the tablespace locations the restore was writing.
 */
export const RESTORE_MARKER = ".pgha-restore-incomplete";

export interface RestoreMarker {
  backup: string;
  tablespaces: { oid: string; location: string }[];
}

export async function writeRestoreMarker(root: string, marker: RestoreMarker): Promise<void> {
  await writeFile(join(root, RESTORE_MARKER), `${JSON.stringify(marker)}\n`, { mode: 0o600 });
}

/** The marker of `root`, if it has one (unreadable: as if it had one naming nothing). */
export async function readRestoreMarker(root: string): Promise<RestoreMarker | undefined> {
  let text: string;
  try {
    text = await readFile(join(root, RESTORE_MARKER), "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
    return { backup: "", tablespaces: [] };
  }
  try {
    const parsed = JSON.parse(text) as RestoreMarker;
    return {
      backup: String(parsed.backup ?? ""),
      tablespaces: Array.isArray(parsed.tablespaces) ? parsed.tablespaces : [],
    };
  } catch {
    return { backup: "", tablespaces: [] };
  }
}

/** What the data directory's pg_control is written as until the restore is complete. */
export const PG_CONTROL_WRITING = "global/pg_control.pgha-restoring";

/** The path a data directory entry is written at (tablespaces have no pg_control). */
export function writtenAs(path: string, tablespace: boolean): string {
  return !tablespace && path === PG_CONTROL ? PG_CONTROL_WRITING : path;
}

/**
 * The restore's last step: pg_control synced, renamed into place, and the rename synced.
 * A backup without one (not a data directory's) restores without one, as before.
 */
export async function putPgControlInPlace(root: string): Promise<void> {
  await rm(join(root, RESTORE_MARKER), { force: true });
  let file: FileHandle;
  try {
    file = await open(join(root, PG_CONTROL_WRITING), "r+");
  } catch (error) {
    if (isErrno(error, "ENOENT")) return;
    throw error;
  }
  try {
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(join(root, PG_CONTROL_WRITING), join(root, PG_CONTROL));
  await syncDirectory(join(root, "global"));
}
