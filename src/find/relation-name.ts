/**
 * The table name `restore find` is given: `name` or `schema.name`, each part an unquoted
 * identifier (folded to lower case, as PostgreSQL does) or a "quoted" one ("" for a quote).
 * Pure; a name that is neither is a usage error.
 */
import { UsageError } from "../errors.js";
import type { RelationQuery } from "./relation-tracker.js";

const PART = /^(?:([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)|"((?:[^"]|"")+)")/;

export function parseRelationName(raw: string, flag: string): RelationQuery {
  const parts: string[] = [];
  let rest = raw.trim();
  for (;;) {
    const m = PART.exec(rest);
    if (!m) break;
    parts.push(m[1] !== undefined ? m[1].toLowerCase() : (m[2] ?? "").replace(/""/g, '"'));
    rest = rest.slice(m[0].length);
    if (!rest.startsWith(".")) break;
    rest = rest.slice(1);
  }
  const [first, second] = parts;
  if (
    rest !== "" ||
    first === undefined ||
    parts.length > 2 ||
    (first?.length ?? 0) > 63 ||
    (second?.length ?? 0) > 63
  )
    throw new UsageError(
      `${flag} '${raw}' is not a table name`,
      'give name or schema.name, for example orders, public.orders or "Sales"."Orders"',
    );
  return second === undefined
    ? { schema: undefined, name: first }
    : { schema: first, name: second };
}

/** How a query reads in messages: the name as given, schema-qualified when it was. */
export function describeQuery(query: RelationQuery): string {
  return query.schema === undefined ? query.name : `${query.schema}.${query.name}`;
}
