import { describe, expect, it } from "vitest";
import {
  formatLsn,
  isValidSegmentSize,
  parseWalFileName,
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
    const file = parseWalFileName("000000010000000A000000FF");
    if (!file) throw new Error("parse");
    expect(formatLsn(segmentStartLsn(file, 16 * 1024 * 1024))).toBe("A/FF000000");
    const small = parseWalFileName("000000010000000100000FFF");
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
});
