/**
 * MapSpill (backup/map-spill.ts): big block maps wait in a temporary file, and the
 * manifest written with them is byte for byte the one written from memory.
 */
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { MapSpill, SPILLED_FROM_CHARS } from "../../src/backup/map-spill.js";
import { ParentIndex } from "../../src/backup/parent-files.js";
import { memoryLogger } from "../../src/log.js";
import type { BackupFileEntry, BlockMap } from "../../src/repository/backup-manifest.js";
import { jsonBody } from "../../src/repository/json-object.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-spill-");

/** A map of `blocks` blocks, as a manifest has it. */
function map(blocks: number): BlockMap {
  return {
    size: 8192,
    hashes: randomBytes(blocks * 16).toString("base64"),
    from: Buffer.alloc(blocks, 1).toString("base64"),
  };
}

function entry(path: string, blocks: number): BackupFileEntry {
  return {
    part: "base",
    path,
    size: blocks * 8192,
    mode: 0o600,
    mtime: "2026-12-02T00:00:00.000Z",
    sha256: "ab".repeat(32),
    blocks: map(blocks),
  };
}

describe("MapSpill", () => {
  it("keeps small maps in memory and big ones in an unlinked file, read back unchanged", async () => {
    const log = memoryLogger();
    const spill = new MapSpill(log, temp.path);
    const small = map(10);
    expect(spill.keep(small)).toBe(small);
    const big = map(131_072); // a 1 GiB file
    expect(big.hashes.length).toBeGreaterThanOrEqual(SPILLED_FROM_CHARS);
    const kept = spill.keep(big);
    expect(kept).not.toBe(big);
    expect(kept.hashes).toBe(big.hashes);
    expect(kept.from).toBe(big.from);
    expect(JSON.stringify(kept)).toBe(JSON.stringify(big));
    // Nothing is left in the directory, even while the spill is open.
    expect(await readdir(temp.path)).toEqual([]);
    spill.close();
    expect(() => kept.hashes).toThrow(/after its spill closed/);
    // Kept after the close (a job's result that came late): in memory, no new file.
    const late = map(131_072);
    expect(spill.keep(late)).toBe(late);
    expect(log.lines).toEqual([]);
  });

  it("writes the same manifest bytes as the maps in memory (few files, and many)", () => {
    for (const count of [3, 1200]) {
      const files = Array.from({ length: count }, (_, i) =>
        entry(`base/5/${16384 + i}`, i % 400 === 0 ? 131_072 + i : 7),
      );
      const doc = { id: "20261202T000000Z", files, rawBytes: 1 };
      const spill = new MapSpill(memoryLogger(), temp.path);
      const spilled = {
        ...doc,
        files: files.map((f) => (f.blocks ? { ...f, blocks: spill.keep(f.blocks) } : f)),
      };
      expect(jsonBody(spilled).equals(jsonBody(doc))).toBe(true);
      expect(jsonBody(doc).toString()).toBe(`${JSON.stringify(doc, null, 1)}\n`);
      spill.close();
    }
  });

  it("leaves maps in memory, with one warning, when the file cannot be made", () => {
    const log = memoryLogger();
    const spill = new MapSpill(log, join(temp.path, "no-such-dir"));
    const big = map(20_000);
    expect(spill.keep(big)).toBe(big);
    expect(spill.keep(map(20_000)).hashes.length).toBe(big.hashes.length);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(
      /^warn: block maps are not kept in a temporary file in .*no-such-dir/,
    );
    spill.close();
  });

  it("leaves maps in memory rather than fill its directory past the reserve", () => {
    const log = memoryLogger();
    const spill = new MapSpill(log, temp.path, false, Number.MAX_SAFE_INTEGER);
    const big = map(20_000);
    expect(spill.keep(big)).toBe(big);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/would leave less than .* free/);
    spill.close();
  });

  it("gives a job a parent's spilled map in memory, unchanged", () => {
    const spill = new MapSpill(memoryLogger(), temp.path);
    const index = new ParentIndex("20261201T000000Z", spill);
    const file = entry("base/5/16384", 131_072);
    index.add(file);
    const [parent] = index.lookup("base", [
      { type: "file", path: "base/5/16384", size: file.size, mode: 0o600, mtime: new Date(0) },
    ] as never);
    expect(parent?.blocks).toEqual({ hashes: file.blocks?.hashes, from: file.blocks?.from });
    // A plain object (it crosses to a job thread by structured clone).
    expect(Object.getOwnPropertyDescriptor(parent?.blocks, "hashes")?.value).toBe(
      file.blocks?.hashes,
    );
    spill.close();
  });

  it("closes itself once none of its maps can be reached (untilUnreachable: a restore's plan)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const spill = new MapSpill(memoryLogger(), temp.path, true);
    let kept: BlockMap | undefined = spill.keep(map(131_072));
    const other = spill.keep(map(131_072));
    expect(kept.hashes.length).toBeGreaterThan(SPILLED_FROM_CHARS);
    const fd = () => (spill as unknown as { fd: number | undefined }).fd;
    expect(fd()).toBeDefined();
    kept = undefined;
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // One map is still reachable: open, and it reads.
    expect(fd()).toBeDefined();
    expect(other.from.length).toBeGreaterThan(0);

    const alone = new MapSpill(memoryLogger(), temp.path, true);
    (() => {
      alone.keep(map(131_072)); // given out and dropped at once
    })();
    const aloneFd = () => (alone as unknown as { fd: number | undefined }).fd;
    for (let i = 0; i < 20 && aloneFd() !== undefined; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(aloneFd()).toBeUndefined();
  });
});
