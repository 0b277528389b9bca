import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Bundle, largestFirst, planBundles } from "../../src/backup/bundle-plan.js";
import { dirEntry as dir, fileEntry as file } from "../helpers/builders.js";

describe("planBundles", () => {
  it("cuts a part into runs of at most the limit, a larger file alone", () => {
    const entries = [
      dir("base"),
      dir("base/1"),
      file("base/1/a", 40),
      file("base/1/b", 50),
      file("base/1/big", 300),
      file("base/1/c", 10),
      dir("global"),
      file("global/x", 91),
    ];
    const bundles = planBundles([{ part: "base", root: "/d", entries }], 100);
    expect(bundles.map((b) => [b.index, b.entries.map((e) => e.path), b.bytes])).toEqual([
      [0, ["base", "base/1", "base/1/a", "base/1/b"], 90],
      [1, ["base/1/big"], 300],
      [2, ["base/1/c", "global"], 10],
      [3, ["global/x"], 91],
    ]);
  });

  it("numbers each part's bundles from 0 and keeps a part without files", () => {
    const bundles = planBundles(
      [
        { part: "16384", root: "/ts", entries: [dir("PG_15_1")] },
        { part: "base", root: "/d", entries: [file("PG_VERSION", 3), file("f", 200)] },
      ],
      100,
    );
    expect(bundles.map((b) => `${b.part}.${b.index}:${b.entries.length}`)).toEqual([
      "16384.0:1",
      "base.0:1",
      "base.1:1",
    ]);
  });

  it("keeps every entry once, in walk order, and every bundle within the limit or a single file", () => {
    const entry = fc.oneof(
      fc.integer({ min: 0, max: 500 }).map((size) => ({ kind: "file" as const, size })),
      fc.constant({ kind: "directory" as const, size: 0 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(entry, { maxLength: 40 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 300 }),
        (parts, limit) => {
          const trees = parts.map((list, p) => ({
            part: `p${p}`,
            root: `/r${p}`,
            entries: list.map((e, i) => (e.kind === "file" ? file(`f${i}`, e.size) : dir(`d${i}`))),
          }));
          const bundles = planBundles(trees, limit);
          for (const tree of trees) {
            const mine = bundles.filter((b) => b.part === tree.part);
            expect(mine.length).toBeGreaterThan(0);
            expect(mine.map((b) => b.index)).toEqual(mine.map((_, i) => i));
            expect(mine.flatMap((b) => b.entries)).toEqual(tree.entries);
            for (const b of mine) {
              const files = b.entries.filter((e) => e.type === "file");
              expect(b.bytes).toBe(files.reduce((s, e) => s + e.size, 0));
              if (files.length > 1) expect(b.bytes).toBeLessThanOrEqual(limit);
            }
          }
        },
      ),
    );
  });

  it("hands out the largest bundles first, ties in plan order", () => {
    const b = (index: number, bytes: number) =>
      ({ part: "base", root: "/", index, entries: [], bytes }) as Bundle;
    const order = largestFirst([b(0, 5), b(1, 9), b(2, 5), b(3, 1)], (x) => x.bytes);
    expect(order.map((x) => x.index)).toEqual([1, 0, 2, 3]);
  });
});
