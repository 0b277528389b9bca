/** Picking the lines that contain one of a few strings out of text arriving in pieces. */
import { describe, expect, it } from "vitest";
import { NeedleLines } from "../../src/find/needle-lines.js";

const TEXT = [
  "rmgr: Heap        len (rec/tot):     59/    59, tx:        901, lsn: 0/13000100, prev 0/130000C8, desc: HOT_UPDATE off 5 xmax 901 ; new off 6 xmax 0, blkref #0: rel 1663/5/16397 blk 12",
  "rmgr: Transaction len (rec/tot):     34/    34, tx:        901, lsn: 0/13000140, prev 0/13000100, desc: COMMIT 2026-12-01 20:24:17.692609 UTC",
  "rmgr: Heap        len (rec/tot):    123/   123, tx:        902, lsn: 0/13000180, prev 0/13000140, desc: UPDATE off 3 xmax 902 flags 0x60 ; new off 8 xmax 0, blkref #0: rel 1663/5/1259 blk 0",
  "rmgr: Heap        len (rec/tot):     54/    54, tx:        902, lsn: 0/13000200, prev 0/13000180, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/12590 blk 0",
  "rmgr: Heap        len (rec/tot):     54/    54, tx:        902, lsn: 0/13000240, prev 0/13000200, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/1259 blk 0",
  "rmgr: Transaction len (rec/tot):     34/    34, tx:        902, lsn: 0/13000280, prev 0/13000240, desc: COMMIT 2026-12-01 20:24:18.000001 UTC",
];
const NEEDLES = ["rmgr: Transaction ", " rel 1663/5/1259 "];
/** What a line-by-line filter keeps: the contract. */
const expected = (needles: string[], lines = TEXT) =>
  lines.filter((l) => needles.some((n) => l.includes(n)));

function pickAll(pieces: Buffer[], needles: string[]): string[] {
  const picker = new NeedleLines(needles);
  return [...pieces.flatMap((p) => picker.push(p)), ...picker.end()];
}

describe("NeedleLines", () => {
  it("keeps the lines with a needle, in order, once each even when two needles match", () => {
    const text = Buffer.from(`${TEXT.join("\n")}\n`);
    expect(pickAll([text], NEEDLES)).toEqual(expected(NEEDLES));
    expect(pickAll([text], [...NEEDLES, "desc: DELETE "])).toEqual(
      expected([...NEEDLES, "desc: DELETE "]),
    );
    expect(pickAll([text], [...NEEDLES, "desc: DELETE "])).toHaveLength(5);
  });

  it("does not take a longer relation number for the one asked", () => {
    const lines = pickAll([Buffer.from(`${TEXT.join("\n")}\n`)], [" rel 1663/5/1259 "]);
    expect(lines).toEqual([TEXT[2], TEXT[4]]);
  });

  it("gives the same lines whatever the pieces the text arrives in", () => {
    const text = Buffer.from(`${TEXT.join("\n")}\n`);
    const want = expected([...NEEDLES, "desc: DELETE "]);
    for (const size of [1, 2, 7, 50, 173, 400, text.length - 1]) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < text.length; at += size) pieces.push(text.subarray(at, at + size));
      expect(pickAll(pieces, [...NEEDLES, "desc: DELETE "]), `pieces of ${size}`).toEqual(want);
    }
  });

  it("reads a last line without a newline, and a needle at the very start", () => {
    const text = Buffer.from(TEXT.join("\n"));
    expect(pickAll([text], ["rmgr: Heap "])).toEqual(expected(["rmgr: Heap "]));
    expect(pickAll([text], ["rmgr: Transaction "])).toEqual(expected(["rmgr: Transaction "]));
  });

  it("keeps nothing without needles or matches", () => {
    const text = Buffer.from(`${TEXT.join("\n")}\n`);
    expect(pickAll([text], [])).toEqual([]);
    expect(pickAll([text], ["rmgr: Btree "])).toEqual([]);
    expect(pickAll([Buffer.alloc(0)], NEEDLES)).toEqual([]);
  });
});
