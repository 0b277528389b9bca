/**
 * The relation tracker over recorded PostgreSQL 15 WAL (fixtures/pg15-ddl.*: a relation map
 * of database fx, then pg_waldump's lines and the raw pg_class records of: TRUNCATE
 * app.ledger; VACUUM FULL app.orders; DELETE of all 50 rows of app.orders; a DROP rolled
 * back; DROP TABLE app.ledger in a released savepoint; DROP app.again, CREATE it again, a
 * DROP rolled back to a savepoint, DROP it again).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RelationMap } from "../../src/find/relation-map.js";
import {
  type Finding,
  type FindingKind,
  RelationTracker,
} from "../../src/find/relation-tracker.js";
import { decodeRecord, newTupleOf } from "../../src/find/wal-record.js";
import { parseWaldumpLine } from "../../src/find/waldump-line.js";

const dir = join(import.meta.dirname, "fixtures");
const fixture = JSON.parse(readFileSync(join(dir, "pg15-ddl.json"), "utf8")) as {
  xids: Record<string, string>;
  map: RelationMap;
  records: Record<string, string>;
};
const lines = readFileSync(join(dir, "pg15-ddl.waldump.txt"), "utf8").split("\n");
const xid = (name: string) => Number(fixture.xids[name]);

function track(
  kinds: FindingKind[],
  name: string,
  schema?: string,
  options: { minRows?: number; map?: RelationMap; records?: Record<string, string> } = {},
): Finding[] {
  const tracker = new RelationTracker(options.map ?? fixture.map, {
    kinds: new Set(kinds),
    query: { schema, name },
    minRows: options.minRows ?? 1000,
  });
  const records = options.records ?? fixture.records;
  const findings: Finding[] = [];
  for (const text of lines) {
    const line = parseWaldumpLine(text, (key, op) => tracker.wantsHeap(key, op));
    if (!line) continue;
    findings.push(
      ...tracker.take(line, (lsn, op, off) => {
        const hex = records[lsn];
        return hex === undefined
          ? undefined
          : newTupleOf(decodeRecord(Buffer.from(hex, "hex")), op, off);
      }),
    );
  }
  return findings;
}

describe("RelationTracker on recorded PostgreSQL 15 WAL", () => {
  it("names a table dropped, re-created and dropped again: two findings, in commit order", () => {
    const found = track(["drop"], "again");
    expect(found.map((f) => [f.xid, f.kind, f.relation, f.database])).toEqual([
      [xid("againFirst"), "drop", "app.again", "fx"],
      [xid("againSecond"), "drop", "app.again", "fx"],
    ]);
    expect(found[0]?.time).toMatch(/^2026-12-01T\d\d:\d\d:\d\d\.\d+Z$/);
    expect(found[0]?.lsn).toMatch(/^0\/[0-9A-F]+$/);
  });

  it("a DROP in a released savepoint counts for its top transaction; a rolled-back one does not", () => {
    // "BEGIN; DROP TABLE app.ledger; ROLLBACK" came first: only the savepoint's is found.
    expect(track(["drop"], "ledger", "app").map((f) => f.xid)).toEqual([xid("savepointDrop")]);
    // ROLLBACK TO a savepoint that dropped app.again: no finding at that transaction.
    expect(track(["drop"], "again").map((f) => f.xid)).not.toContain(xid("rollbackSub"));
  });

  it("tells TRUNCATE from VACUUM FULL (a rewrite through a transient relation)", () => {
    expect(track(["truncate"], "ledger").map((f) => [f.xid, f.kind])).toEqual([
      [xid("truncate"), "truncate"],
    ]);
    expect(track(["truncate"], "orders")).toEqual([]);
    expect(track(["rewrite"], "orders").map((f) => [f.kind, f.relation])).toEqual([
      ["rewrite", "app.orders"],
    ]);
  });

  it("counts heap DELETEs on the table's file after it was rewritten, against --min-rows", () => {
    expect(
      track(["delete"], "orders", undefined, { minRows: 50 }).map((f) => [f.xid, f.rows]),
    ).toEqual([[xid("deleteAll"), 50]]);
    expect(track(["delete"], "orders", undefined, { minRows: 51 })).toEqual([]);
  });

  it("matches the schema when one is given", () => {
    expect(track(["drop"], "again", "public")).toEqual([]);
    expect(track(["drop"], "again", "app")).toHaveLength(2);
  });

  it("without the records' tuples a re-created table has no name: the second DROP is not found", () => {
    expect(track(["drop"], "again", undefined, { records: {} }).map((f) => f.xid)).toEqual([
      xid("againFirst"),
    ]);
  });

  it("leaves out transactions that committed before the map was read", () => {
    const [db] = fixture.map.databases;
    if (!db) throw new Error("fixture has no database");
    // A map read after everything: every transaction is already in it.
    const late: RelationMap = { ...fixture.map, databases: [{ ...db, lsn: "FF/0" }] };
    expect(track(["drop"], "again", undefined, { map: late })).toEqual([]);
  });
});
