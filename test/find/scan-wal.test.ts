/** scanArchivedWal's ending: a failing pg_waldump ends the scan with its error, never a hang. */
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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
