/** scanArchivedWal's ending: a failing pg_waldump ends the scan with its error, never a hang. */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scanArchivedWal } from "../../src/find/scan-wal.js";

describe("scanArchivedWal", () => {
  it("rejects with pg_waldump's failure while later chunks still wait for segments", async () => {
    const segments = Array.from(
      { length: 16 },
      (_, i) => `0000000100000000000000${(0x10 + i).toString(16).toUpperCase()}`,
    );
    let fetched = 0;
    const scan = scanArchivedWal(
      async (_name, dest) => {
        fetched++;
        // Slow after the first few, as a fetch from a far repository is.
        if (fetched > 6) await new Promise((r) => setTimeout(r, 50));
        await writeFile(dest, Buffer.alloc(64));
      },
      {
        segments,
        segmentSize: 16 * 1024 * 1024,
        startLsn: 0x10000028n,
        timeline: 1,
        pgWaldump: "/bin/false",
        rmgrs: ["Heap", "Transaction"],
        needles: ["rmgr: "],
        tempRoot: tmpdir(),
      },
      () => undefined,
    );
    await expect(scan).rejects.toThrow(/pg_waldump failed \(exit 1\)/);
  }, 20_000);
});

describe("scanArchivedWal and a record longer than a segment", () => {
  const SEG = 16 * 1024 * 1024;
  const FIRST = 0x10;
  const names = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => `0000000100000000000000${(FIRST + i).toString(16).toUpperCase()}`,
    );
  /** A segment's first page header: rem_len bytes of a record continue into it. */
  const header = (segno: number, remLen: number) => {
    const b = Buffer.alloc(40);
    b.writeUInt16LE(0xd110, 0);
    b.writeUInt16LE(remLen > 0 ? 0x0007 : 0x0006, 2);
    b.writeUInt32LE(1, 4);
    b.writeBigUInt64LE(BigInt(segno) * BigInt(SEG), 8);
    b.writeUInt32LE(remLen, 16);
    b.writeUInt32LE(SEG, 32);
    b.writeUInt32LE(8192, 36);
    return b;
  };

  /** Runs a scan with a pg_waldump that only notes its --start and --end. */
  async function scan(segments: number, remLen: (index: number) => number) {
    const dir = await mkdtemp(join(tmpdir(), "pgha-scan-long-"));
    const log = join(dir, "runs");
    const waldump = join(dir, "pg_waldump");
    await writeFile(
      waldump,
      `#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in --start) s=$2;; --end) e=$2;; esac; shift; done\necho "$s $e" >> '${log}'\n`,
    );
    await chmod(waldump, 0o755);
    const outcome = await scanArchivedWal(
      async (name, dest) => {
        const index = Number.parseInt(name.slice(16), 16) - FIRST;
        await writeFile(dest, header(FIRST + index, remLen(index)));
      },
      {
        segments: names(segments),
        segmentSize: SEG,
        startLsn: BigInt(FIRST) * BigInt(SEG) + 0x28n,
        timeline: 1,
        pgWaldump: waldump,
        rmgrs: ["Heap", "Transaction"],
        needles: ["rmgr: "],
        tempRoot: dir,
      },
      () => undefined,
    );
    const runs = (await readFile(log, "utf8")).trim().split("\n").sort();
    await rm(dir, { recursive: true, force: true });
    return { outcome, runs };
  }

  it("a record covering the next chunk's first segment whole is read to its end", async () => {
    // A record starts in segment 3 (chunk 0), covers segment 4 whole and ends 5000 bytes
    // into segment 5: chunk 0's pg_waldump reads to the end of that page of segment 5.
    const { outcome, runs } = await scan(8, (i) => (i === 4 ? SEG + 5000 : i === 5 ? 5000 : 0));
    expect(runs[0]).toBe("0/10000028 0/15002000");
    expect(outcome.unread).toEqual([]);
  });

  it("one longer than the segments on disk reach is reported, not read silently short", async () => {
    // Segments 4.. all continue the same record, past what chunk 0 may wait for (index 12).
    const { outcome, runs } = await scan(20, (i) => (i >= 4 && i < 19 ? SEG + 100 : 0));
    expect(runs[0]).toBe("0/10000028 0/1D000000");
    expect(outcome.unread).toContain("0/1D000000");
  });
});
