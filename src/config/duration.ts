/**
 * The one duration grammar, for every duration option and flag (--retry-timeout,
 * --archive-timeout, --schedule-grace, --delay, --idle-exit, --timeout, --keep-within,
 * --pitr-window) and for times relative to now (--target-time -1h). A leaf: it imports
 * nothing, so the wal-push path and retention/ can both use it.
 *
 *   <number><unit>  ms, s, m or min (minutes), h, d, w; mo (calendar months), y (years).
 *                   A fraction is allowed for ms to w (1.5h), not for mo and y.
 *   <number>        seconds (90 = 90s).
 *   ISO 8601        P7D, PT12H, PT30M (30 minutes), P1M (one month), P1Y2M3DT4H5M6S.
 *
 * Every spelling means one thing wherever it is accepted. Refused, with a hint:
 * - "M" (30M): minutes or months? (ISO 8601 inside P… says which);
 * - where a value may be calendar-long (--pitr-window, --keep-within): "m" and a bare
 *   number. pgha used to read "3m" there as three months; reading it as minutes now
 *   would silently shrink a retention window, so it is refused instead.
 * - where a value must have a fixed length (timeouts, delays): mo and y.
 */

export interface DurationParts {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
  milliseconds: number;
}

/** Whether months and years may be used (retention) or a fixed length is needed (timeouts). */
export type DurationUse = "fixed" | "calendar";

export class DurationError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const EXAMPLES: Record<DurationUse, string> = {
  fixed: "for example 500ms, 30s, 15m (or 15min), 4h, 2d",
  calendar: "for example 90min, 36h, 7d, 2w, 3mo, 1y or P7D",
};

const UNITS: Record<string, keyof DurationParts> = {
  ms: "milliseconds",
  s: "seconds",
  m: "minutes",
  min: "minutes",
  h: "hours",
  d: "days",
  w: "weeks",
  mo: "months",
  y: "years",
};

const NUMBER = "(\\d+(?:\\.\\d+)?)";
const ISO = new RegExp(
  `^P(?:${NUMBER}Y)?(?:${NUMBER}M)?(?:${NUMBER}W)?(?:${NUMBER}D)?(?:T(?:${NUMBER}H)?(?:${NUMBER}M)?(?:${NUMBER}S)?)?$`,
  "i",
);

function zero(): DurationParts {
  return {
    years: 0,
    months: 0,
    weeks: 0,
    days: 0,
    hours: 0,
    minutes: 0,
    seconds: 0,
    milliseconds: 0,
  };
}

/** The parts of a duration in the grammar above, or a DurationError saying why not. */
export function parseDurationParts(raw: string, use: DurationUse): DurationParts {
  const text = raw.trim();
  const refuse = (why: string, hint = EXAMPLES[use]) => new DurationError(`'${raw}' ${why}`, hint);
  const parts = zero();
  const iso = /^P/i.test(text) ? ISO.exec(text) : null;
  if (iso && /\d/.test(text) && !/T$/i.test(text)) {
    const keys: (keyof DurationParts)[] = [
      "years",
      "months",
      "weeks",
      "days",
      "hours",
      "minutes",
      "seconds",
    ];
    keys.forEach((key, i) => {
      if (iso[i + 1] !== undefined) parts[key] = Number(iso[i + 1]);
    });
  } else {
    const short = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(text);
    if (!short) throw refuse("is not a duration");
    const [, number, unit = ""] = short;
    if (unit === "M" || unit === "") {
      const n = number ?? "";
      if (unit === "M")
        throw refuse(
          "is ambiguous: M could be minutes or months",
          `write ${n}min for minutes or ${n}mo for months`,
        );
      if (use === "calendar")
        throw refuse(
          "has no unit",
          `write one: ${n}s, ${n}min, ${n}h, ${n}d, ${n}w, ${n}mo or ${n}y`,
        );
      parts.seconds = Number(number);
      return parts;
    }
    const key = UNITS[unit];
    if (key === undefined) throw refuse("is not a duration");
    if (unit === "m" && use === "calendar")
      throw refuse(
        "is ambiguous here: m is minutes, but pgha used to read it as months in this option",
        `write ${number}min for minutes or ${number}mo for months`,
      );
    if ((key === "months" || key === "years") && !/^\d+$/.test(number ?? ""))
      throw refuse("is not a whole number of months or years");
    parts[key] = Number(number);
  }
  if (use === "fixed" && (parts.months > 0 || parts.years > 0))
    throw refuse(
      "has no fixed length: months and years differ in length",
      "write it in days or weeks, for example 30d",
    );
  return parts;
}

const MS: Record<Exclude<keyof DurationParts, "months" | "years">, number> = {
  weeks: 7 * 86_400_000,
  days: 86_400_000,
  hours: 3_600_000,
  minutes: 60_000,
  seconds: 1000,
  milliseconds: 1,
};

/** A fixed-length duration in milliseconds (days are 24 hours). */
export function parseDurationMs(raw: string): number {
  const parts = parseDurationParts(raw, "fixed");
  let ms = 0;
  for (const [key, factor] of Object.entries(MS)) ms += parts[key as keyof typeof MS] * factor;
  return Math.round(ms);
}
