/** Tar headers of bundles: what pgha writes, as tar readers read it. */

import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { END_OF_ARCHIVE, encodeTarHeader, padding } from "../../src/backup/tar-header.js";

const mtime = new Date("2026-11-21T12:00:00Z");

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
