/**
 * Durations for retention, in pgha's one duration grammar (src/config/duration.ts):
 * "90min", "36h", "7d", "2w", "3mo" (calendar months), "1y", or ISO 8601 ("P7D", "PT12H").
 * Calendar units stay calendar units: luxon applies them in the zone.
 */
import { Duration } from "luxon";
import { DurationError, parseDurationParts } from "../src/config/duration.js";
import { RetentionPolicyError } from "./errors.js";

export function parseRetentionDuration(text: string): Duration {
  try {
    return Duration.fromObject(parseDurationParts(text, "calendar"));
  } catch (error) {
    if (error instanceof DurationError)
      throw new RetentionPolicyError(`${error.message}: not a duration (${error.hint})`);
    throw error;
  }
}
