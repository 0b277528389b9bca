import { describe, expect, it } from "vitest";
import { RefusedError } from "../../src/errors.js";
import { parseSegmentFileName } from "../../src/wal/names.js";
import { checkSegmentHeader, parseLongPageHeader } from "../../src/wal/page-header.js";
import { makeSegment, SYSID } from "../helpers/segments.js";

const name = (n: string) => {
  const parsed = parseSegmentFileName(n);
  if (!parsed) throw new Error(`bad name ${n}`);
  return parsed;
};

describe("long page header", () => {
  it("reads system identifier, segment size, timeline, address and version", () => {
    const header = parseLongPageHeader(makeSegment(3, 0, 5, { segmentSize: 1 << 24 }));
    expect(header).toMatchObject({
      systemIdentifier: SYSID.toString(),
      segmentSize: 1 << 24,
      timeline: 3,
      pageAddress: 5n << 24n,
      pgVersion: "15",
      blockSize: 8192,
    });
  });

  it("accepts segments of any valid size whose header matches the name", () => {
    for (const size of [1 << 20, 1 << 22, 1 << 24, 1 << 26]) {
      const bytes = makeSegment(1, 2, 3, { segmentSize: size });
      expect(checkSegmentHeader(name("000000010000000200000003"), bytes, size).segmentSize).toBe(
        size,
      );
    }
  });

  it("accepts a first segment of a new timeline whose page still carries the old timeline", () => {
    const bytes = makeSegment(2, 0, 3, { pageTimeline: 1 });
    expect(() =>
      checkSegmentHeader(name("000000020000000000000003"), bytes, bytes.length),
    ).not.toThrow();
  });

  it.each([
    ["a file size that differs from the header", {}, 1000, /file size 1000/],
    [
      "a page address that differs from the name",
      { pageAddress: 0n },
      undefined,
      /page address 0\/0 differs/,
    ],
    ["a page from a later timeline", { pageTimeline: 5 }, undefined, /page timeline 5/],
    ["a missing long header flag", { longHeader: false }, undefined, /no long page header/],
    ["an impossible segment size", { segmentSize: 3 << 20 }, undefined, /not a power of two/],
  ] as const)("refuses %s", (_what, spec, size, message) => {
    const bytes = makeSegment(1, 0, 2, spec);
    const check = () =>
      checkSegmentHeader(name("000000010000000000000002"), bytes, size ?? bytes.length);
    expect(check).toThrow(RefusedError);
    expect(check).toThrow(message);
  });

  it("refuses a segment number too large for the segment size", () => {
    const bytes = makeSegment(1, 0, 0, { segmentSize: 1 << 30 });
    expect(() => checkSegmentHeader(name("000000010000000000000004"), bytes, bytes.length)).toThrow(
      /too large/,
    );
  });
});
