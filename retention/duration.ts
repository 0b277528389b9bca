/**
 * Durations for retention: "36h", "7d", "2w", "3m" (calendar months), "1y", or ISO 8601
 * ("P7D", "PT12H"). Calendar units stay calendar units: luxon applies them in the zone.
 */
import { Duration } from "luxon";
import { RetentionPolicyError } from "./errors.js";

const UNITS: Record<string, keyof import("luxon").DurationLikeObject> = {
  h: "hours",
  d: "days",
  w: "weeks",
  m: "months",
  y: "years",
};

export function parseRetentionDuration(text: string): Duration {
  const trimmed = text.trim();
  const short = /^(\d+)([hdwmy])$/.exec(trimmed);
  if (short) {
    const unit = UNITS[short[2] ?? ""];
    if (unit) return Duration.fromObject({ [unit]: Number(short[1]) });
  }
  if (/^P/i.test(trimmed)) {
    const iso = Duration.fromISO(trimmed.toUpperCase());
    if (iso.isValid) return iso;
  }
  throw new RetentionPolicyError(`'${text}' is not a duration like 36h, 7d, 2w, 3m, 1y or P7D`);
}
