/** jsonBody: the bytes of JSON.stringify(value, null, 1) + "\n", built a piece at a time. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonBody } from "../../src/repository/json-object.js";

const reference = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 1)}\n`);

describe("jsonBody", () => {
  it("gives JSON.stringify's bytes for objects with long arrays of any JSON values", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
        fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1001, maxLength: 1050 }),
        fc.string(),
        (rest, long, key) => {
          const value = { ...rest, [key]: long, after: rest };
          expect(jsonBody(value).equals(reference(value))).toBe(true);
        },
      ),
      { numRuns: 8 },
    );
  });

  it("gives the same bytes for a manifest of 100,000 files, and for values it does not split", () => {
    const files = Array.from({ length: 100_000 }, (_, i) => ({
      part: "base",
      path: `base/5/${9_000_000 + i}`,
      size: 8192,
      mode: 384,
      mtime: "2026-12-01T20:00:00.000Z",
      sha256: "ab".repeat(32),
      skipped: undefined,
    }));
    const manifest = { format: 1, id: "x", files, objects: [], nothing: undefined, label: null };
    expect(jsonBody(manifest).equals(reference(manifest))).toBe(true);
    for (const value of [[1, 2], "text", 3, null, {}, { a: [] }, { toJSON: () => [1] }])
      expect(jsonBody(value).equals(reference(value))).toBe(true);
  });
});
