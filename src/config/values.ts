/**
 * Parsers for option values. Each takes the raw text and returns the typed value, or
 * throws a message (a plain string) that the loader turns into a one-line UsageError
 * naming the option and where the value came from.
 */
import type { Compression } from "../compress/compression.js";
import { DurationError, parseDurationMs, parseDurationParts } from "./duration.js";

export type RepoLocation =
  | { kind: "fs"; path: string; url: string }
  | { kind: "s3"; bucket: string; prefix: string; url: string };

export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFormat = "text" | "json";

export class ValueError extends Error {
  /** What to do instead, when the option's own description would not say. */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

export function parseRepoLocation(raw: string): RepoLocation {
  const text = raw.trim();
  if (text === "") throw new ValueError("empty repository location");
  if (text.startsWith("s3://")) {
    const rest = text.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = (slash === -1 ? "" : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, "");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new ValueError(`'${bucket}' is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`);
    }
    if (prefix.split("/").some((part) => part === "." || part === ".." || part === "")) {
      if (prefix !== "") throw new ValueError(`prefix '${prefix}' has an empty, '.' or '..' part`);
    }
    return { kind: "s3", bucket, prefix, url: `s3://${bucket}${prefix ? `/${prefix}` : ""}` };
  }
  let path = text;
  if (text.startsWith("file://")) {
    path = decodeURIComponent(text.slice("file://".length));
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new ValueError(`unsupported scheme in '${text}' (use a local path, file:// or s3://)`);
  }
  if (!path.startsWith("/")) {
    // archive_command runs inside the data directory: a relative repository would land there.
    throw new ValueError(`'${text}' is not an absolute path`);
  }
  const normalized = path.length > 1 ? path.replace(/\/+$/, "") : path;
  return { kind: "fs", path: normalized, url: `file://${normalized}` };
}

export function parseCompression(raw: string): Compression {
  const text = raw.trim().toLowerCase();
  if (text === "none") return { algorithm: "none" };
  const match = /^zstd(?::(-?\d+))?$/.exec(text);
  if (!match) throw new ValueError(`'${raw}' is not zstd, zstd:LEVEL or none`);
  const level = match[1] === undefined ? DEFAULT_ZSTD_LEVEL : Number(match[1]);
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new ValueError(`zstd level ${match[1]} is out of range 1-19`);
  }
  return { algorithm: "zstd", level };
}

/**
 * zstd's own default, confirmed by `npm run bench:wal` on pgbench WAL: level 3 stores 3-4%
 * less than level 1 for ~7% more time per push, level 6 another 8% less for ~35% more.
 */
export const DEFAULT_ZSTD_LEVEL = 3;

export function formatCompression(spec: Compression): string {
  return spec.algorithm === "none" ? "none" : `zstd:${spec.level}`;
}

/** A fixed-length duration (the one grammar: duration.ts), in milliseconds; 90 is 90s. */
export function parseDuration(raw: string): number {
  try {
    return parseDurationMs(raw);
  } catch (error) {
    if (error instanceof DurationError) throw new ValueError(error.message, error.hint);
    throw error;
  }
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** "16MiB", "5MB", "8388608". Returns bytes. */
export function parseSize(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "?").toLowerCase()];
  if (!match || unit === undefined) throw new ValueError(`'${raw}' is not a size like 16MiB`);
  return Math.round(Number(match[1]) * unit);
}

export function parseBoolean(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(text)) return true;
  if (["0", "false", "no", "off"].includes(text)) return false;
  throw new ValueError(`'${raw}' is not true or false`);
}

export function parseChoice<T extends string>(choices: readonly T[]) {
  return (raw: string): T => {
    const text = raw.trim().toLowerCase();
    const found = choices.find((c) => c === text);
    if (found === undefined) throw new ValueError(`'${raw}' is not one of ${choices.join(", ")}`);
    return found;
  };
}

/** Cluster names become one path segment of every key. */
export function parseClusterName(raw: string): string {
  const text = raw.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(text)) {
    throw new ValueError(
      `'${raw}' is not a cluster name (1-63 of A-Z a-z 0-9 . _ -, not starting with . _ -)`,
    );
  }
  return text;
}

export function parseCount(raw: string): number {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) throw new ValueError(`'${raw}' is not a whole number of 0 or more`);
  return Number(text);
}

/** A whole number from `min` to `max`. */
function parseWholeIn(raw: string, min: number, max: number): number {
  const text = raw.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new ValueError(`'${raw}' is not a whole number from ${min} to ${max}`);
  return n;
}

/** backup-max-incr: 0 to 254 (a block map names a chain's backups in one byte). */
export function parseMaxIncr(raw: string): number {
  return parseWholeIn(raw, 0, 254);
}

/** A percentage from 1 to 100 (whole numbers). */
export function parsePercent(raw: string): number {
  return parseWholeIn(raw, 1, 100);
}

/**
 * --backup-incr-whole's default: half. Past it a delta entry saves less than half of the
 * file, while a restore of every later backup of the chain reads the older copies only to
 * pass most of their blocks over.
 */
export const DEFAULT_INCR_WHOLE_PERCENT = 50;

/** How many jobs run at once: 1 to 256. */
export function parseJobs(raw: string): number {
  return parseWholeIn(raw, 1, 256);
}

/**
 * A duration that may be calendar-long (the one grammar: duration.ts): 90min, 36h, 7d, 2w,
 * 3mo, 1y, P7D. Kept as written: the retention engine applies it in --retention-zone.
 */
export function parseRetentionSpan(raw: string): string {
  try {
    parseDurationParts(raw, "calendar");
  } catch (error) {
    if (error instanceof DurationError) throw new ValueError(error.message, error.hint);
    throw error;
  }
  return raw.trim();
}

export function parseText(raw: string): string {
  const text = raw.trim();
  if (text === "") throw new ValueError("empty value");
  return text;
}

/** A file path that means the same from every working directory (archive_command runs in the data directory). */
export function parseAbsolutePath(raw: string): string {
  const text = parseText(raw);
  if (!text.startsWith("/")) throw new ValueError(`'${raw}' is not an absolute path`);
  return text;
}

export function parseHttpUrl(raw: string): string {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ValueError(`'${raw}' is not a URL like http://127.0.0.1:9000`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ValueError(`'${raw}' must start with http:// or https://`);
  }
  return text.replace(/\/+$/, "");
}

/** age X25519 recipients: "age1" and 58 characters of bech32's alphabet each. */
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** A list of age public keys (age1...), separated by commas or white space; at least one. */
export function parseRecipients(raw: string): string[] {
  const list = raw
    .split(/[\s,]+/)
    .map((text) => text.trim())
    .filter((text) => text !== "");
  if (list.length === 0) throw new ValueError("no recipient given");
  for (const text of list) {
    if (!AGE_RECIPIENT.test(text.toLowerCase())) {
      throw new ValueError(
        `'${text.length > 70 ? `${text.slice(0, 70)}…` : text}' is not an age X25519 public key`,
        "recipients are the age1... lines that 'pgha key generate' (or age-keygen) prints; never put an AGE-SECRET-KEY here",
      );
    }
  }
  return [...new Set(list.map((text) => text.toLowerCase()))];
}
