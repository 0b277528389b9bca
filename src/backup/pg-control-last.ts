/**
 * A restore's global/pg_control is written under another name and put in place only once
 * every other file is written, checked and synced, the recovery configuration included
 * (putPgControlInPlace, the restore's last step): a restore killed half-way (kill -9,
 * power loss) leaves a data directory without pg_control, which no server starts, instead
 * of one that starts on half-written files. restore --delta also removes the existing
 * pg_control before it changes anything (assemble-backup.ts).
 */
import { type FileHandle, open, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isErrno, syncDirectory } from "../local-files.js";

export const PG_CONTROL = "global/pg_control";

/**
 * Written into the data directory before a restore writes anything else, removed (and the
 * removal synced) just before pg_control is put in place: a directory that has it holds a
 * restore that did not finish, which restore --delta finishes even without a PG_VERSION yet
 * (restore/delta-target.ts). It names the backup, for whoever looks.
 */
export const RESTORE_MARKER = ".pgha-restore-incomplete";

export async function writeRestoreMarker(root: string, backupId: string): Promise<void> {
  await writeFile(join(root, RESTORE_MARKER), `${JSON.stringify({ backup: backupId })}\n`, {
    mode: 0o600,
  });
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
  await syncDirectory(root).catch(() => undefined);
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
