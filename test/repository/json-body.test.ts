/** jsonBody: the bytes of JSON.stringify(value, null, 1) + "\n", built a piece at a time. */

import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonBody, jsonText } from "../../src/repository/json-object.js";

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

  it("streams a document with long arrays in pieces, none of them the whole, and counts them first", () => {
    const files = Array.from({ length: 1500 }, (_, i) => ({
      path: `base/5/${i}`,
      // Some elements far larger than a piece: block maps of 1 GiB files.
      blocks: { hashes: (i % 500 === 0 ? "A" : "b").repeat(i % 500 === 0 ? 3_000_000 : 20) },
    }));
    const manifest = { id: "x", files };
    const text = jsonText(manifest);
    expect(text.whole).toBe(undefined);
    const pieces = [...text.pieces()];
    const bytes = Buffer.concat(pieces);
    expect(bytes.equals(reference(manifest))).toBe(true);
    expect(text.size).toBe(bytes.length);
    expect(text.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    // The block maps are handed on in slices: no piece holds one whole.
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(200_000);
    // A document changed between the count and the stream fails the stream at its end.
    const changed = jsonText(manifest);
    files.push({ path: "late", blocks: { hashes: "c" } });
    expect(() => [...changed.pieces()]).toThrow(/changed while it was stored/);
    // A small document is one buffer.
    expect(jsonText({ a: [1] }).whole?.toString()).toBe(`${JSON.stringify({ a: [1] }, null, 1)}\n`);
  });

  it("gives JSON.stringify's bytes for elements with long strings, verbatim or not", () => {
    const long = (c: string) => c.repeat(70_000);
    const value = {
      files: Array.from({ length: 1001 }, (_, i) => ({
        i,
        a: i % 250 === 0 ? long("A") : "a",
        nested: { b: i % 300 === 0 ? [long("B"), 1, long('q"\\')] : null, c: long("é") },
        d: i % 400 === 0 ? `pgha-long-${i}` : undefined,
      })),
      tail: long("z"),
    };
    const text = jsonText(value);
    const bytes = Buffer.concat([...text.pieces()]);
    expect(bytes.equals(reference(value))).toBe(true);
    expect(text.size).toBe(bytes.length);
  });
});
