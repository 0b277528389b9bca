/** Packing a bundle from the files of a walk, and unpacking it, without PostgreSQL. */

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
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { packBundle } from "../../src/backup/pack-bundle.js";
import { unpackBundle } from "../../src/backup/unpack-bundle.js";
import { type WalkEntry, walkTree } from "../../src/backup/walk.js";
import { IntegrityError } from "../../src/errors.js";
import { dirEntry as dir, fileEntry as file } from "../helpers/builders.js";

/** Packs a bundle: what packBundle reports, and the stored bytes. */
async function pack(spec: Parameters<typeof packBundle>[0]) {
  const chunks: Buffer[] = [];
  const packed = await packBundle(spec, {
    output: async (chunk) => void chunks.push(chunk),
    progress: () => undefined,
  });
  return { packed, stored: Buffer.concat(chunks) };
}

/** Unpacks zstd-compressed `stored` (in one chunk) into `out`, listening to nothing. */
function unpackQuietly(stored: Buffer, out: string) {
  return unpackBundle(
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
}

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
      const { packed, stored } = await pack({
        part: "base",
        root: src,
        entries,
        compression,
        zstdThreads: 0,
      });
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
    const { packed, stored } = await pack({
      part: "base",
      root: src,
      entries,
      compression: { algorithm: "zstd", level: 3 },
      zstdThreads: 1,
    });
    expect(packed.files.map((f) => [f.path, f.size])).toEqual([
      ["base/5/grows", 10],
      ["base/5/shrinks", 3 << 20],
    ]);
    const out = join(root, "out");
    await mkdir(out);
    await unpackQuietly(stored, out);
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
    const { stored } = await pack({
      part: "base",
      root: src,
      entries: [file("f", 100_000)],
      compression: { algorithm: "zstd", level: 3 },
      zstdThreads: 0,
    });
    stored[stored.length - 6] = (stored[stored.length - 6] ?? 0) ^ 0xff;
    const out = join(root, "out");
    await mkdir(out);
    await expect(unpackQuietly(stored, out)).rejects.toBeInstanceOf(IntegrityError);
  });
});
