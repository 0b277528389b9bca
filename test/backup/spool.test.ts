/** The spool of a delta entry's blocks: memory first, then an unlinked temporary file. */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Spool } from "../../src/backup/spool.js";
import { LocalIoError } from "../../src/errors.js";

describe("Spool", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-spool-test-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const drained = async (spool: Spool, bufferBytes = 7) => {
    const out: Buffer[] = [];
    await spool.drain(
      Buffer.alloc(bufferBytes),
      async (bytes) => void out.push(Buffer.from(bytes)),
    );
    return Buffer.concat(out);
  };

  it("gives back what it kept, in order, past its memory, and is reused empty", async () => {
    const spool = new Spool(16, dir);
    const input = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");
    const kept = Buffer.from(input);
    await spool.append(kept.subarray(0, 10));
    kept.fill(0, 0, 10); // the caller's buffer is reused: the spool kept a copy
    await spool.append(input.subarray(10, 30));
    await spool.append(input.subarray(30));
    expect(spool.length).toBe(input.length);
    // The temporary file is unlinked: nothing is left in the directory, even before close.
    expect(await readdir(dir)).toEqual([]);
    expect((await drained(spool)).equals(input)).toBe(true);
    expect(spool.length).toBe(0);
    await spool.append(Buffer.from("again"));
    expect((await drained(spool)).toString()).toBe("again");
    await spool.append(Buffer.from("forgotten"));
    spool.clear();
    expect((await drained(spool)).length).toBe(0);
    await spool.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it("a directory it cannot write in is a local I/O error naming it", async () => {
    const spool = new Spool(4, join(dir, "missing"));
    await spool.append(Buffer.from("1234"));
    await expect(spool.append(Buffer.from("5"))).rejects.toThrow(LocalIoError);
    await expect(spool.append(Buffer.from("5"))).rejects.toThrow(/missing/);
    await spool.close();
  });
});
