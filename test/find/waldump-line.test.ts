/** Reading pg_waldump lines (PostgreSQL 15, TZ=UTC) into what restore find uses. */
import { describe, expect, it } from "vitest";
import { parseWaldumpLine, waldumpTimeToIso } from "../../src/find/waldump-line.js";

const all = () => true;

describe("parseWaldumpLine", () => {
  it("reads a COMMIT with its time, subtransactions, and dropped files", () => {
    const line =
      "rmgr: Transaction len (rec/tot):    477/   477, tx:        751, lsn: 0/01A00280, prev 0/01A00248, desc: COMMIT 2026-12-01 20:55:04.285413 UTC; rels: base/16415/16430; subxacts: 752 760; dropped stats: 2/16415/16424; inval msgs: catcache 80";
    expect(parseWaldumpLine(line, all)).toEqual({
      kind: "end",
      committed: true,
      xid: 751,
      lsn: "0/01A00280",
      time: "2026-12-01T20:55:04.285413Z",
      subxacts: [752, 760],
    });
  });

  it("reads an ABORT and a bare COMMIT", () => {
    expect(
      parseWaldumpLine(
        "rmgr: Transaction len (rec/tot):     38/    38, tx:        756, lsn: 0/01A075A8, prev 0/01A07570, desc: ABORT 2026-12-01 20:55:04.579365 UTC",
        all,
      ),
    ).toMatchObject({ kind: "end", committed: false, xid: 756, subxacts: [] });
    expect(
      parseWaldumpLine(
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        749, lsn: 0/019FDC08, prev 0/019FDBD0, desc: COMMIT 2026-12-01 20:55:04.167756 UTC",
        all,
      ),
    ).toMatchObject({
      kind: "end",
      committed: true,
      xid: 749,
      time: "2026-12-01T20:55:04.167756Z",
    });
  });

  it("reads an UPDATE across pages: block 0 is the new tuple's, block 1 the old one's", () => {
    const line =
      "rmgr: Heap        len (rec/tot):    123/   123, tx:        726, lsn: 0/0152A2F0, prev 0/0152A2C0, desc: UPDATE off 3 xmax 726 flags 0x60 ; new off 8 xmax 0, blkref #0: rel 1663/5/1259 blk 2, blkref #1: rel 1663/5/1259 blk 0";
    expect(parseWaldumpLine(line, all)).toEqual({
      kind: "heap",
      op: "update",
      xid: 726,
      lsn: "0/0152A2F0",
      rel: { spc: 1663, db: 5, rel: 1259 },
      blk: 2,
      off: 8,
      oldBlk: 0,
      oldOff: 3,
    });
  });

  it("reads a HOT_UPDATE (same page), an INSERT+INIT with a page image, and a DELETE", () => {
    expect(
      parseWaldumpLine(
        "rmgr: Heap        len (rec/tot):     80/    80, tx:        729, lsn: 0/015462A0, prev 0/01546120, desc: HOT_UPDATE off 1 xmax 729 flags 0x60 ; new off 5 xmax 0, blkref #0: rel 1663/5/1259 blk 1",
        all,
      ),
    ).toMatchObject({ op: "update", blk: 1, off: 5, oldBlk: 1, oldOff: 1 });
    expect(
      parseWaldumpLine(
        "rmgr: Heap        len (rec/tot):     54/  5238, tx:        729, lsn: 0/0153D210, prev 0/0153BC18, desc: INSERT+INIT off 1 flags 0x01, blkref #0: rel 1663/5/1259 blk 1 FPW",
        all,
      ),
    ).toMatchObject({ op: "insert", blk: 1, off: 1 });
    expect(
      parseWaldumpLine(
        "rmgr: Heap        len (rec/tot):     54/    54, tx:        730, lsn: 0/01548070, prev 0/01548038, desc: DELETE off 14 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/16390 fork main blk 0",
        all,
      ),
    ).toMatchObject({ op: "delete", xid: 730, rel: { rel: 16390 }, blk: 0, off: 14 });
  });

  it("leaves out what the caller does not want and what find has no use for", () => {
    const del =
      "rmgr: Heap        len (rec/tot):     54/    54, tx:        730, lsn: 0/01548070, prev 0/01548038, desc: DELETE off 14 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/16390 blk 0";
    const asked: [string, string][] = [];
    expect(
      parseWaldumpLine(del, (key, op) => {
        asked.push([key, op]);
        return false;
      }),
    ).toBeUndefined();
    expect(asked).toEqual([["1663/5/16390", "delete"]]);
    for (const line of [
      "rmgr: Heap        len (rec/tot):    188/   188, tx:        729, lsn: 0/01546120, prev 0/01546090, desc: INPLACE off 3, blkref #0: rel 1663/5/1259 blk 1",
      "rmgr: Heap2       len (rec/tot):     58/    58, tx:        730, lsn: 0/01547FA8, prev 0/01547F70, desc: PRUNE latestRemovedXid 0 nredirected 0 ndead 2, blkref #0: rel 1663/5/1249 blk 55",
      "rmgr: Transaction len (rec/tot):     34/    34, tx:          0, lsn: 0/01547FA8, prev 0/01547F70, desc: INVALIDATION ; inval msgs: catcache 7",
      "pg_waldump: error: error in WAL record at 0/1558868: invalid record length at 0/15588A0: wanted 24, got 0",
      "",
    ])
      expect(parseWaldumpLine(line, all)).toBeUndefined();
  });

  it("turns pg_waldump's UTC times into ISO 8601", () => {
    expect(waldumpTimeToIso("2026-12-01 20:24:17.692609 UTC")).toBe("2026-12-01T20:24:17.692609Z");
  });
});
