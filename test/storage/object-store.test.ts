import { describe, expect, it } from "vitest";
import { compareKeys } from "../../src/storage/object-store.js";

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe("compareKeys", () => {
  it("orders keys by their UTF-8 bytes, as S3 lists them", () => {
    const keys = [
      "b",
      "a/b",
      "a-b",
      "a.b",
      "A",
      "a",
      "a/",
      "a\uFFFFb",
      "a\u{10000}b",
      "a\u00e9",
      "a~",
    ];
    const sorted = [...keys].sort(compareKeys);
    expect(sorted).toEqual([...keys].sort(byBytes));
    expect(sorted.indexOf("a\uFFFFb")).toBeLessThan(sorted.indexOf("a\u{10000}b"));
    expect(compareKeys("x", "x")).toBe(0);
  });
});
