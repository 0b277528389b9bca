/**
 * A restore's global/pg_control is written under another name and put in place only once
 * every other file is written and checked (finishTree): a restore killed half-way (kill -9,
 * power loss) leaves a data directory without pg_control, which no server starts, instead
 * of one that starts on half-written files. restore --delta also removes the existing
 * pg_control before it changes anything (assemble-backup.ts).
 */
export const PG_CONTROL = "global/pg_control";

/** What the data directory's pg_control is written as until the restore is complete. */
export const PG_CONTROL_WRITING = "global/pg_control.pgha-restoring";

/** The path a data directory entry is written at (tablespaces have no pg_control). */
export function writtenAs(path: string, tablespace: boolean): string {
  return !tablespace && path === PG_CONTROL ? PG_CONTROL_WRITING : path;
}
