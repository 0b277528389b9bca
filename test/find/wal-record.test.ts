/**
 * Raw WAL records: a record read over page headers (24 bytes; 40 at a segment's start),
 * and pg_class fields from a new tuple whose prefix and suffix the record left out.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  decodeRecord,
  newTupleOf,
  pgClassFields,
  readRecordBytes,
} from "../../src/find/wal-record.js";

const SEGMENT = 16 * 1024 * 1024;
const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, "fixtures", "pg15-ddl.json"), "utf8"),
) as { records: Record<string, string> };

/** A WAL segment in memory with `record` placed at `at`, split over page headers. */
function segmentWith(record: Buffer, at: number): Buffer {
  const segment = Buffer.alloc(4 * 8192, 0xee);
  let pos = at;
  let taken = 0;
  while (taken < record.length) {
    if (pos % 8192 === 0) pos += pos % SEGMENT === 0 ? 40 : 24;
    const room = 8192 - (pos % 8192);
    const n = Math.min(room, record.length - taken);
    record.copy(segment, pos, taken, taken + n);
    taken += n;
    pos += n;
  }
  return segment;
}

describe("readRecordBytes", () => {
  it("reads a record that continues after a page header", () => {
    const record = Buffer.alloc(300);
    record.writeUInt32LE(300, 0);
    for (let i = 4; i < 300; i++) record[i] = i % 251;
    const at = 8192 - 96; // 96 bytes on the first page, the rest after the next page's header
    const segment = segmentWith(record, at);
    const read = (lsn: bigint, length: number) =>
      segment.subarray(Number(lsn), Number(lsn) + length);
    expect(readRecordBytes(read, BigInt(at), SEGMENT)).toEqual(record);
  });

  it("decodes a recorded pg_class INSERT: the new tuple's fields", () => {
    const inserts = Object.entries(fixture.records).map(([lsn, hex]) => {
      const decoded = decodeRecord(Buffer.from(hex, "hex"));
      // xl_heap_insert: offnum first.
      const off = decoded.main.readUInt16LE(0);
      return {
        lsn,
        fields: (() => {
          const tuple = newTupleOf(decoded, "insert", off);
          return tuple && tuple.prefix === 0 ? pgClassFields(tuple) : undefined;
        })(),
      };
    });
    const names = inserts.map((i) => i.fields?.name).filter((n) => n !== undefined);
    expect(names).toContain("again");
    const again = inserts.find((i) => i.fields?.name === "again")?.fields;
    expect(again).toMatchObject({ kind: "r", tablespace: 0 });
    expect(again?.relfilenode).toBe(again?.oid);
  });
});

describe("pgClassFields", () => {
  /** The first 116 bytes of a pg_class tuple's data with the fields find reads. */
  function tupleData(fields: { oid: number; name: string; nsp: number; fn: number; kind: string }) {
    const data = Buffer.alloc(140);
    data.writeUInt32LE(fields.oid, 0);
    data.write(fields.name, 4, "utf8");
    data.writeUInt32LE(fields.nsp, 68);
    data.writeUInt32LE(fields.fn, 88);
    data.write(fields.kind, 115, "latin1");
    return data;
  }
  const old = {
    oid: 16384,
    name: "orders",
    namespace: 2200,
    relfilenode: 16384,
    tablespace: 0,
    kind: "r",
  };

  it("takes a field the prefix covers from the old row", () => {
    const data = tupleData({ oid: 16384, name: "orders", nsp: 2200, fn: 16391, kind: "r" });
    expect(pgClassFields({ data: data.subarray(88, 133), prefix: 88, suffix: 7 }, old)).toEqual({
      ...old,
      relfilenode: 16391,
    });
  });

  it("puts a field the prefix cuts in two together from both (16384 -> 16640 differ in byte 2)", () => {
    const data = tupleData({ oid: 16384, name: "orders", nsp: 2200, fn: 16640, kind: "r" });
    // 16384 = 00 40 00 00, 16640 = 00 41 00 00: the common prefix ends inside relfilenode.
    expect(pgClassFields({ data: data.subarray(89), prefix: 89, suffix: 0 }, old).relfilenode).toBe(
      16640,
    );
  });

  it("leaves out a field neither the record nor the old row gives", () => {
    const data = tupleData({ oid: 16384, name: "orders", nsp: 2200, fn: 16391, kind: "r" });
    const fields = pgClassFields({ data: data.subarray(88), prefix: 88, suffix: 0 }, {});
    expect(fields).toEqual({ relfilenode: 16391, tablespace: 0, kind: "r" });
  });
});
