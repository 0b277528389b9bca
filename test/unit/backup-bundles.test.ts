/** Bundles: how files are cut into them, their tar headers, and pack/unpack without PostgreSQL. */

import {
  appendFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  truncate,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Bundle, largestFirst, planBundles } from "../../src/backup/bundle-plan.js";
import { packBundle } from "../../src/backup/pack-bundle.js";
import { END_OF_ARCHIVE, encodeTarHeader, padding } from "../../src/backup/tar-header.js";
import { unpackBundle } from "../../src/backup/unpack-bundle.js";
import { type WalkEntry, walkTree } from "../../src/backup/walk.js";
import { IntegrityError } from "../../src/errors.js";

const mtime = new Date("2026-11-21T12:00:00Z");
const file = (path: string, size: number): WalkEntry => ({
  path,
  type: "file",
  size,
  mode: 0o600,
  mtime,
});
const dir = (path: string): WalkEntry => ({ path, type: "directory", size: 0, mode: 0o700, mtime });

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

/** Parses a tar stream with tar-stream: every header, and each entry's data. */
async function readTar(data: Buffer): Promise<{ header: tar.Header; data: Buffer }[]> {
  const extract = tar.extract();
  const out: { header: tar.Header; data: Buffer }[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      out.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extract.end(data);
  await done;
  return out;
}

describe("tar headers", () => {
  it("are read back by tar-stream: long, non-ASCII and linked names, and sizes", async () => {
    const long = `${"d".repeat(90)}/${"e".repeat(90)}/${"f".repeat(60)}`;
    const veryLong = `${"x".repeat(120)}/${"y".repeat(120)}`;
    const cases = [
      { name: "PG_VERSION", type: "file" as const, size: 3, mode: 0o600, mtime },
      { name: "base/1", type: "directory" as const, size: 0, mode: 0o700, mtime },
      { name: long, type: "file" as const, size: 0, mode: 0o640, mtime },
      { name: veryLong, type: "file" as const, size: 1, mode: 0o600, mtime },
      { name: "dé/ü", type: "file" as const, size: 2, mode: 0o600, mtime },
      {
        name: "pg_wal",
        type: "symlink" as const,
        size: 0,
        mode: 0o777,
        mtime,
        linkname: `/mnt/${"w".repeat(150)}`,
      },
    ];
    const parts: Buffer[] = [];
    for (const header of cases) {
      parts.push(encodeTarHeader(header));
      if (header.type === "file") {
        parts.push(Buffer.alloc(header.size, 7), Buffer.alloc(padding(header.size)));
      }
    }
    parts.push(END_OF_ARCHIVE);
    const entries = await readTar(Buffer.concat(parts));
    expect(entries.map((e) => e.header.name.replace(/\/$/, ""))).toEqual(cases.map((c) => c.name));
    expect(entries.map((e) => e.header.type)).toEqual(cases.map((c) => c.type));
    expect(entries.map((e) => e.header.mode)).toEqual(cases.map((c) => c.mode));
    expect(entries.map((e) => e.data.length)).toEqual(
      cases.map((c) => (c.type === "file" ? c.size : 0)),
    );
    expect(entries.every((e) => e.header.mtime?.getTime() === mtime.getTime())).toBe(true);
    expect(entries[5]?.header.linkname).toBe(cases[5]?.linkname);
  });

  it("write sizes of 8 GiB and more in base-256", () => {
    const size = 9 * 1024 ** 3 + 5;
    const block = encodeTarHeader({ name: "huge", type: "file", size, mode: 0o600, mtime });
    expect(block.length).toBe(512);
    expect(block[124]).toBe(0x80);
    let decoded = 0;
    for (let i = 125; i < 136; i++) decoded = decoded * 256 + (block[i] ?? 0);
    expect(decoded).toBe(size);
  });
});

describe("pack and unpack a bundle", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "pgha-bundle-"));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  for (const compression of [
    { algorithm: "zstd", level: 3 } as const,
    { algorithm: "none" } as const,
  ]) {
    it(`round-trips files of every size (${compression.algorithm}), reporting what it wrote`, async () => {
      const src = join(root, "src");
      await mkdir(join(src, "base", "1"), { recursive: true });
      const sizes = [0, 1, 511, 512, 513, (1 << 20) - 1, 1 << 20, (3 << 20) + 17];
      const entries: WalkEntry[] = [dir("base"), dir("base/1")];
      for (const [i, size] of sizes.entries()) {
        const data = Buffer.alloc(size);
        for (let at = 0; at < size; at++) data[at] = (at * 31 + i) & 0xff;
        await writeFile(join(src, "base", "1", `f${i}`), data);
        entries.push(file(`base/1/f${i}`, size));
      }
      entries.push({ ...dir("pg_wal"), type: "symlink", linkTarget: "/elsewhere/wal" });
      const chunks: Buffer[] = [];
      const packed = await packBundle(
        { part: "base", root: src, entries, compression, zstdThreads: 0 },
        { output: async (chunk) => void chunks.push(chunk), progress: () => undefined },
      );
      const stored = Buffer.concat(chunks);
      expect(packed.storedSize).toBe(stored.length);
      expect(packed.files.map((f) => f.path)).toEqual(sizes.map((_, i) => `base/1/f${i}`));

      const out = join(root, "out");
      await mkdir(out);
      const files: [string, number, string][] = [];
      const dirs: string[] = [];
      const links: string[] = [];
      const result = await unpackBundle(
        { dest: out, compression: compression.algorithm, what: "test object" },
        (async function* () {
          // Arbitrary cuts: the stored bytes arrive as the store hands them out.
          for (let at = 0; at < stored.length; at += 70_001) yield stored.subarray(at, at + 70_001);
        })(),
        {
          file: (path, size, sha256) => files.push([path, size, sha256]),
          directory: (path) => dirs.push(path),
          symlink: (path, target) => links.push(`${path} -> ${target}`),
          progress: () => undefined,
        },
      );
      expect(result.rawSize).toBe(packed.rawSize);
      expect(files).toEqual(packed.files.map((f) => [f.path, f.size, f.sha256]));
      expect(dirs).toEqual([join(out, "base"), join(out, "base", "1")]);
      expect(links).toEqual([`${join(out, "pg_wal")} -> /elsewhere/wal`]);
    });
  }

  it("pads files that shrank, cuts files that grew and leaves out files that vanished", async () => {
    const src = join(root, "src");
    await mkdir(join(src, "base", "5"), { recursive: true });
    await writeFile(join(src, "base", "5", "shrinks"), Buffer.alloc(3 << 20, 7));
    await writeFile(join(src, "base", "5", "grows"), "0123456789");
    await writeFile(join(src, "base", "5", "vanishes"), "bye");
    const entries = await walkTree(src, { isDataDirectory: true });
    await truncate(join(src, "base", "5", "shrinks"), 1000);
    await appendFile(join(src, "base", "5", "grows"), "more");
    await unlink(join(src, "base", "5", "vanishes"));
    const chunks: Buffer[] = [];
    const packed = await packBundle(
      {
        part: "base",
        root: src,
        entries,
        compression: { algorithm: "zstd", level: 3 },
        zstdThreads: 1,
      },
      { output: async (chunk) => void chunks.push(chunk), progress: () => undefined },
    );
    expect(packed.files.map((f) => [f.path, f.size])).toEqual([
      ["base/5/grows", 10],
      ["base/5/shrinks", 3 << 20],
    ]);
    const out = join(root, "out");
    await mkdir(out);
    const stored = Buffer.concat(chunks);
    await unpackBundle(
      { dest: out, compression: "zstd", what: "test object" },
      (async function* () {
        yield stored;
      })(),
      {
        file: () => undefined,
        directory: () => undefined,
        symlink: () => undefined,
        progress: () => undefined,
      },
    );
    const shrunk = await readFile(join(out, "base", "5", "shrinks"));
    expect(shrunk.length).toBe(3 << 20);
    expect(shrunk.subarray(0, 1000).every((b) => b === 7)).toBe(true);
    expect(shrunk.subarray(1000).every((b) => b === 0)).toBe(true);
    expect((await readFile(join(out, "base", "5", "grows"))).toString()).toBe("0123456789");
    await expect(readFile(join(out, "base", "5", "vanishes"))).rejects.toThrow(/ENOENT/);
  });

  it("fails on corrupt stored bytes as an integrity error", async () => {
    const src = join(root, "src");
    await mkdir(src);
    await writeFile(join(src, "f"), Buffer.alloc(100_000, 3));
    const chunks: Buffer[] = [];
    await packBundle(
      {
        part: "base",
        root: src,
        entries: [file("f", 100_000)],
        compression: { algorithm: "zstd", level: 3 },
        zstdThreads: 0,
      },
      { output: async (chunk) => void chunks.push(chunk), progress: () => undefined },
    );
    const stored = Buffer.concat(chunks);
    stored[stored.length - 6] = (stored[stored.length - 6] ?? 0) ^ 0xff;
    const out = join(root, "out");
    await mkdir(out);
    await expect(
      unpackBundle(
        { dest: out, compression: "zstd", what: "test object" },
        (async function* () {
          yield stored;
        })(),
        {
          file: () => undefined,
          directory: () => undefined,
          symlink: () => undefined,
          progress: () => undefined,
        },
      ),
    ).rejects.toBeInstanceOf(IntegrityError);
  });
});
