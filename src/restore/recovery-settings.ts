/**
 * The recovery settings a restore or a standby needs, as [name, value] pairs in the order
 * they are written. Pure; restore_command is built by recovery-config.ts's
 * restoreCommandLine and passed in.
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import type { RestoreRequest, RestoreTarget } from "./target.js";

export type Setting = [name: string, value: string];

/** The one recovery_target* setting a target sets; none for latest (the end of the archive). */
function chosenTarget(target: RestoreTarget): Setting | undefined {
  if (target.kind === "latest") return undefined;
  if (target.kind === "immediate") return ["recovery_target", "immediate"];
  const value =
    target.kind === "time"
      ? target.text
      : target.kind === "lsn"
        ? target.lsn
        : target.kind === "xid"
          ? target.xid
          : target.name;
  return [`recovery_target_${target.kind}`, value];
}

/** recovery_target_* for a point-in-time recovery (restore_command not included). */
export function targetSettings(request: RestoreRequest, backup: BackupManifest): Setting[] {
  const chosen = chosenTarget(request.target);
  const settings: Setting[] = chosen ? [chosen] : [];
  // Written every time, defaults included: a value left in postgresql.conf must not apply.
  settings.push(["recovery_target_inclusive", request.exclusive ? "false" : "true"]);
  // PostgreSQL 11 and older read "current" as 0, which means latest: write the number.
  const timelineValue =
    request.timeline === "current"
      ? backup.pgVersionNum >= 120000
        ? "current"
        : String(backup.timeline)
      : String(request.timeline);
  settings.push(["recovery_target_timeline", timelineValue]);
  settings.push(["recovery_target_action", request.action]);
  return settings;
}

export interface StandbyOptions {
  /** undefined: an archive-only standby, following the repository through restore_command. */
  primaryConninfo: string | undefined;
  slot: string | undefined;
  restoreCommand: string;
  /** recovery_min_apply_delay in ms, for a delayed standby. */
  delayMs: number | undefined;
}

/**
 * A standby streams from the primary and falls back to the archive, or (no conninfo)
 * follows the archive alone; it follows the latest timeline. An archive-only standby
 * writes primary_conninfo = '' so that one left in postgresql.conf (a backup taken from
 * a standby carries its own) cannot make it stream after all.
 */
export function standbySettings(options: StandbyOptions): Setting[] {
  const streaming = options.primaryConninfo !== undefined;
  return [
    ["primary_conninfo", options.primaryConninfo ?? ""],
    ...(streaming && options.slot ? [["primary_slot_name", options.slot] as Setting] : []),
    ["restore_command", options.restoreCommand],
    ["recovery_target_timeline", "latest"],
    ...(options.delayMs !== undefined
      ? [["recovery_min_apply_delay", `${options.delayMs}ms`] as Setting]
      : []),
  ];
}
