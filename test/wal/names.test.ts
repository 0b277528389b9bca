import { describe, expect, it } from "vitest";
import {
  formatLsn,
  historyFileName,
  isValidSegmentSize,
  parseLsn,
  parseSegmentFileName,
  parseWalFileName,
  segmentBeforeLsn,
  segmentName,
  segmentNumber,
  segmentRange,
  segmentStartLsn,
} from "../../src/wal/names.js";

describe("parseWalFileName", () => {
  it.each([
    ["000000010000000A000000FF", "segment", 1],
    ["000000020000000A000000FF.partial", "partial", 2],
    ["000000010000000000000003.00000028.backup", "backup", 1],
    ["0000000A.history", "history", 10],
  ])("parses %s as a %s on timeline %i", (name, kind, timeline) => {
    const parsed = parseWalFileName(name);
    expect(parsed?.kind).toBe(kind);
    expect(parsed?.timeline).toBe(timeline);
  });

  it.each([
    "00000001000000000000000",
    "000000010000000000000001.gz",
    "000000000000000000000001",
    "00000000.history",
    "0000000100000000000000ff",
    "../000000010000000000000001",
    "RECOVERYXLOG",
    "000000010000000000000001.partial.x",
    "",
  ])("refuses %j", (name) => {
    expect(parseWalFileName(name)).toBeUndefined();
  });

  it("computes segment start LSNs for any segment size", () => {
    const file = parseSegmentFileName("000000010000000A000000FF");
    if (!file) throw new Error("parse");
    expect(formatLsn(segmentStartLsn(file, 16 * 1024 * 1024))).toBe("A/FF000000");
    const small = parseSegmentFileName("000000010000000100000FFF");
    if (!small) throw new Error("parse");
    expect(formatLsn(segmentStartLsn(small, 1024 * 1024))).toBe("1/FFF00000");
  });

  it("knows the valid wal_segment_size values", () => {
    expect(isValidSegmentSize(1 << 20)).toBe(true);
    expect(isValidSegmentSize(1 << 30)).toBe(true);
    expect(isValidSegmentSize(16 * 1024 * 1024)).toBe(true);
    expect(isValidSegmentSize(1 << 19)).toBe(false);
    expect(isValidSegmentSize(3 << 20)).toBe(false);
    expect(isValidSegmentSize(1 << 31)).toBe(false);
  });

  it("gives history files a timeline and no segment position", () => {
    expect(parseWalFileName("0000000A.history")).toEqual({
      name: "0000000A.history",
      kind: "history",
      timeline: 10,
    });
    expect(parseSegmentFileName("0000000A.history")).toBeUndefined();
    expect(parseSegmentFileName("000000020000000A000000FF.partial")).toMatchObject({
      kind: "partial",
      segment: "000000020000000A000000FF",
      log: 10,
      seg: 255,
    });
    expect(historyFileName(10)).toBe("0000000A.history");
  });

  it("turns segment numbers into names and back for any segment size", () => {
    for (const size of [1 << 20, 16 << 20, 1 << 30]) {
      for (const segno of [0n, 1n, 255n, 256n, 4095n, 4096n, 123_456n]) {
        const name = segmentName(3, segno, size);
        const file = parseSegmentFileName(name);
        if (!file) throw new Error(name);
        expect(file.timeline).toBe(3);
        expect(segmentNumber(file, size)).toBe(segno);
      }
    }
    expect(segmentName(1, 256n, 16 << 20)).toBe("000000010000000100000000");
    expect(segmentRange("0000000100000000000000FE", "000000010000000100000001", 16 << 20)).toEqual([
      "0000000100000000000000FE",
      "0000000100000000000000FF",
      "000000010000000100000000",
      "000000010000000100000001",
    ]);
  });

  it("parses and formats LSNs", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    expect(parseLsn(" 0/0 ")).toBe(0n);
    expect(parseLsn("16B374D848")).toBeUndefined();
    expect(formatLsn(0x16b374d848n)).toBe("16/B374D848");
  });
});

describe("the WAL a backup needs", () => {
  it("names the WAL a backup needs", () => {
    const mib16 = 16 * 1024 * 1024;
    expect(segmentBeforeLsn(1, 0x9000100n, mib16)).toBe("000000010000000000000009");
    expect(segmentBeforeLsn(1, 0xa000000n, mib16)).toBe("000000010000000000000009");
    expect(segmentRange("0000000100000000000000FE", "000000010000000100000001", mib16)).toEqual([
      "0000000100000000000000FE",
      "0000000100000000000000FF",
      "000000010000000100000000",
      "000000010000000100000001",
    ]);
  });
});
