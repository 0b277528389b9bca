/**
 * Restore targets: parsed once, from the target flags of `restore`, `restore plan`,
 * `standby` and `drill`, into the request the planner takes. Pure: `now` is passed in.
 *
 * A time target keeps both the instant (for choosing a backup and the WAL range) and the
 * text PostgreSQL gets as recovery_target_time: the user's own digits (microseconds
 * included), with a numeric offset, because PostgreSQL reads recovery_target_time before
 * it loads time zone abbreviations and refuses "Z".
 */
import { parseDurationMs } from "../config/duration.js";
import { UsageError } from "../errors.js";
import { parseLsn } from "../wal/names.js";

export type RestoreTarget =
  | { kind: "latest" }
  | { kind: "immediate" }
  | { kind: "time"; at: number; text: string }
  | { kind: "lsn"; lsn: string }
  | { kind: "xid"; xid: string }
  | { kind: "name"; name: string };

export type TargetTimeline = "latest" | "current" | number;
export type TargetAction = "promote" | "pause" | "shutdown";

export interface RestoreRequest {
  target: RestoreTarget;
  timeline: TargetTimeline;
  exclusive: boolean;
  action: TargetAction;
  backupId: string | undefined;
}

/** The target flags as given (undefined when absent). */
export interface TargetFlags {
  targetTime?: string | undefined;
  targetLsn?: string | undefined;
  targetXid?: string | undefined;
  targetName?: string | undefined;
  latest?: boolean | undefined;
  immediate?: boolean | undefined;
  targetTimeline?: string | undefined;
  targetExclusive?: boolean | undefined;
  targetAction?: string | undefined;
  backup?: string | undefined;
}

export interface TargetParseOptions {
  now: Date;
  /** Accept times relative to now (-1h, -30m, -90min, -2d, -90s): restore and drill do. */
  relativeTimes: boolean;
}

/** An absolute ISO 8601 time with a zone, or (when allowed) a time relative to now. */
export function parseTargetTime(raw: string, options: TargetParseOptions): RestoreTarget {
  const text = raw.trim();
  // "-" and a duration of the one grammar (duration.ts) in seconds to days.
  const relative = options.relativeTimes ? /^-(\d+(?:\.\d+)?(?:ms|s|m|min|h|d))$/.exec(text) : null;
  if (relative) {
    const at = options.now.getTime() - parseDurationMs(relative[1] ?? "");
    return { kind: "time", at, text: postgresTime(new Date(at).toISOString()) };
  }
  const at = Date.parse(text);
  if (!/(Z|[+-]\d\d(:?\d\d)?)$/i.test(text) || Number.isNaN(at)) {
    throw new UsageError(
      `--target-time '${raw}' is not an ISO 8601 time with a zone`,
      options.relativeTimes
        ? "for example 2026-11-21T14:03:27+01:00, 2026-11-21T13:03:27Z, or relative to now: -90s, -30m, -1h, -2d"
        : "for example 2026-11-21T14:03:27+01:00 or 2026-11-21T13:03:27Z",
    );
  }
  const impossible = impossibleDate(text);
  if (impossible !== undefined) {
    throw new UsageError(
      `--target-time '${raw}' is not a real time: ${impossible}`,
      "check the day of the month and the time of day",
    );
  }
  return { kind: "time", at, text: postgresTime(text) };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Why the calendar fields of an ISO time name no real moment ("2026-02-30", "24:00"), or
 * undefined. Date.parse rolls them over (February 30 becomes March 2); PostgreSQL refuses
 * them, after the backup was downloaded.
 */
function impossibleDate(text: string): string | undefined {
  const fields = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d)(?::(\d\d)(?::(\d\d))?)?)?/i.exec(text);
  if (!fields) return undefined;
  const [year, month, day, hour, minute, second] = fields.slice(1).map((f) => Number(f ?? 0));
  const y = year ?? 0;
  const m = month ?? 0;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = m === 2 && leap ? 29 : (DAYS_IN_MONTH[m - 1] ?? 0);
  if (m < 1 || m > 12) return `there is no month ${m}`;
  if ((day ?? 0) < 1 || (day ?? 0) > days) return `${fields[1]}-${fields[2]} has no day ${day}`;
  if ((hour ?? 0) > 23 || (minute ?? 0) > 59 || (second ?? 0) > 59)
    return `${fields[4]}:${fields[5] ?? "00"}:${fields[6] ?? "00"} is not a time of day`;
  return undefined;
}

/** "2026-11-21T13:03:27.5Z" -> "2026-11-21 13:03:27.5+00:00": what recovery_target_time accepts. */
function postgresTime(iso: string): string {
  return iso.replace(/[zZ]$/, "+00:00").replace("T", " ");
}

/** At most one target (none means latest); the timeline, action and backup options. */
export function parseRestoreRequest(
  flags: TargetFlags,
  options: TargetParseOptions,
): RestoreRequest {
  const given: RestoreTarget[] = [];
  if (flags.targetTime !== undefined) given.push(parseTargetTime(flags.targetTime, options));
  if (flags.targetLsn !== undefined) {
    if (parseLsn(flags.targetLsn) === undefined)
      throw new UsageError(
        `--target-lsn '${flags.targetLsn}' is not an LSN`,
        "for example 0/16B3748",
      );
    given.push({ kind: "lsn", lsn: flags.targetLsn.toUpperCase() });
  }
  if (flags.targetXid !== undefined) {
    if (!/^\d+$/.test(flags.targetXid))
      throw new UsageError(
        `--target-xid '${flags.targetXid}' is not a transaction id`,
        "for example 123456",
      );
    given.push({ kind: "xid", xid: flags.targetXid });
  }
  if (flags.targetName !== undefined) {
    // PostgreSQL reads an empty recovery_target_name as "no target": the end of the archive.
    if (flags.targetName === "")
      throw new UsageError(
        "--target-name is empty",
        "name a restore point made with pg_create_restore_point, or give --latest",
      );
    given.push({ kind: "name", name: flags.targetName });
  }
  if (flags.latest === true) given.push({ kind: "latest" });
  if (flags.immediate === true) given.push({ kind: "immediate" });
  if (given.length > 1) {
    throw new UsageError(
      "give one target",
      "one of --target-time, --target-lsn, --target-xid, --target-name, --latest, --immediate",
    );
  }
  return {
    target: given[0] ?? { kind: "latest" },
    timeline: parseTargetTimeline(flags.targetTimeline ?? "latest"),
    exclusive: flags.targetExclusive === true,
    action: parseTargetAction(flags.targetAction ?? "pause"),
    backupId: flags.backup,
  };
}

export function parseTargetTimeline(raw: string): TargetTimeline {
  if (raw === "latest" || raw === "current") return raw;
  if (/^\d+$/.test(raw) && Number(raw) > 0) return Number(raw);
  throw new UsageError(
    `--target-timeline '${raw}' is not latest, current or a number`,
    "for example --target-timeline 2",
  );
}

export function parseTargetAction(raw: string): TargetAction {
  if (raw === "promote" || raw === "pause" || raw === "shutdown") return raw;
  throw new UsageError(
    `--target-action '${raw}' is not promote, pause or shutdown`,
    "pause is PostgreSQL's default",
  );
}

export function describeTarget(target: RestoreTarget): string {
  switch (target.kind) {
    case "latest":
      return "the end of the archive";
    case "immediate":
      return "the end of the backup (consistency)";
    case "time":
      return `time ${target.text}`;
    case "lsn":
      return `LSN ${target.lsn}`;
    case "xid":
      return `transaction ${target.xid}`;
    case "name":
      return `restore point '${target.name}'`;
  }
}
