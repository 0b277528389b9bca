/**
 * --pg-conn in either of libpq's forms (errors never repeat the text: it may hold a password): a URI (postgresql://...), or keyword/value pairs
 * (host=/var/run/postgresql port=5433 dbname=app), which the pg driver's parser reads as a
 * host name. Keyword/value text is turned into the equivalent URI, so one parser serves both.
 */
import { UsageError } from "../errors.js";

const URI = /^postgres(?:ql)?:\/\//;

/** The conninfo as a URI; throws UsageError for text that is neither form. */
export function conninfoUri(text: string): string {
  const trimmed = text.trim();
  if (URI.test(trimmed)) return trimmed;
  const pairs = keywordValues(trimmed);
  const { dbname, ...rest } = Object.fromEntries(pairs);
  const query = Object.entries(rest)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
  return `postgresql:///${dbname === undefined ? "" : encodeURIComponent(dbname)}${query ? `?${query}` : ""}`;
}

/** libpq's keyword = value list: values may be single-quoted, with \' and \\ inside. */
function keywordValues(text: string): [string, string][] {
  const pairs: [string, string][] = [];
  let at = 0;
  const fail = (why: string) =>
    new UsageError(
      `--pg-conn is not a connection string: ${why}`,
      "give a URI (postgresql://user@host:5432/db) or keyword=value pairs (host=/var/run/postgresql port=5432 dbname=app)",
    );
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at] ?? "")) at++;
  };
  skipSpace();
  while (at < text.length) {
    const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at))?.[0];
    if (!key) throw fail(`expected a keyword at character ${at + 1}`);
    at += key.length;
    skipSpace();
    if (text[at] !== "=") throw fail(`expected '=' after ${key}`);
    at++;
    skipSpace();
    let value = "";
    if (text[at] === "'") {
      at++;
      for (;;) {
        const c = text[at];
        if (c === undefined) throw fail(`unterminated quoted value of ${key}`);
        at++;
        if (c === "'") break;
        if (c === "\\" && at < text.length) value += text[at++];
        else value += c;
      }
    } else {
      while (at < text.length && !/\s/.test(text[at] ?? "")) {
        const c = text[at++];
        if (c === "\\" && at < text.length) value += text[at++];
        else value += c;
      }
    }
    pairs.push([key, value]);
    skipSpace();
  }
  if (pairs.length === 0) throw fail("it is empty");
  return pairs;
}
