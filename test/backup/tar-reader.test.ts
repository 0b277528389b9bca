/** The tar reader against what tar-stream's pack, pgha's own headers and GNU tar write. */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { END_OF_ARCHIVE, encodeTarHeader, padding } from "../../src/backup/tar-header.js";
import { type TarEvent, TarFormatError, TarReader } from "../../src/backup/tar-reader.js";

interface Entry {
  name: string;
  type: "file" | "directory" | "symlink";
  mode: number;
  data?: Buffer;
  linkname?: string;
}

/** Reads `data` cut into pieces at `cuts`; files come back whole. */
async function readAll(data: Buffer, cuts: number[] = []): Promise<Entry[]> {
  const reader = new TarReader();
  const out: Entry[] = [];
  let current: { entry: Entry; chunks: Buffer[] } | undefined;
  const handle = (event: TarEvent) => {
    if (event.kind === "file") {
      current = { entry: { name: event.name, type: "file", mode: event.mode }, chunks: [] };
    } else if (event.kind === "data") {
      // A view that is only valid now: copy it.
      current?.chunks.push(Buffer.from(event.bytes));
    } else if (event.kind === "file-end" && current) {
      out.push({ ...current.entry, data: Buffer.concat(current.chunks) });
      current = undefined;
    } else if (event.kind === "directory") {
      out.push({ name: event.name.replace(/\/$/, ""), type: "directory", mode: event.mode });
    } else if (event.kind === "symlink") {
      out.push({ name: event.name, type: "symlink", mode: 0, linkname: event.target });
    } else if (event.kind === "other") {
      out.push({ name: event.name, type: event.type as "file", mode: 0 });
    }
  };
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < data.length)].sort((a, b) => a - b)) {
    await reader.write(data.subarray(at, cut), handle);
    at = cut;
  }
  await reader.write(data.subarray(at), handle);
  reader.end();
  return out;
}

async function packWithTarStream(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === "file") pack.entry({ name: e.name, mode: e.mode, type: "file" }, e.data ?? "");
    else if (e.type === "directory") pack.entry({ name: e.name, mode: e.mode, type: "directory" });
    else pack.entry({ name: e.name, type: "symlink", linkname: e.linkname ?? "", mode: 0o777 });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

function packWithHeaders(entries: Entry[]): Buffer {
  const mtime = new Date();
  const parts: Buffer[] = [];
  for (const e of entries) {
    const size = e.data?.length ?? 0;
    parts.push(
      encodeTarHeader({
        name: e.name,
        type: e.type,
        size,
        mode: e.mode,
        mtime,
        ...(e.linkname ? { linkname: e.linkname } : {}),
      }),
    );
    if (e.data) parts.push(e.data, Buffer.alloc(padding(size)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

const sample: Entry[] = [
  { name: "base", type: "directory", mode: 0o700 },
  { name: "base/1", type: "directory", mode: 0o750 },
  { name: "base/1/empty", type: "file", mode: 0o600, data: Buffer.alloc(0) },
  { name: "base/1/block", type: "file", mode: 0o600, data: Buffer.alloc(512, 1) },
  { name: "base/1/odd", type: "file", mode: 0o640, data: Buffer.from("x".repeat(1000)) },
  {
    name: `${"p".repeat(90)}/${"q".repeat(90)}/long-but-split`,
    type: "file",
    mode: 0o600,
    data: Buffer.from("ab"),
  },
  { name: `${"n".repeat(300)}`, type: "file", mode: 0o600, data: Buffer.from("pax") },
  { name: "ünïcode", type: "file", mode: 0o600, data: Buffer.from("u") },
  { name: "pg_wal", type: "symlink", mode: 0, linkname: `/mnt/${"w".repeat(200)}` },
];

describe("TarReader", () => {
  for (const [writer, pack] of [
    ["tar-stream's pack (backups before bundles)", packWithTarStream],
    ["pgha's headers (bundles)", async (e: Entry[]) => packWithHeaders(e)],
  ] as const) {
    it(`reads what ${writer} writes, cut anywhere`, async () => {
      const data = await pack(sample);
      const whole = await readAll(data);
      expect(whole.map((e) => [e.name, e.type, e.data?.toString("hex"), e.linkname])).toEqual(
        sample.map((e) => [e.name, e.type, e.data?.toString("hex"), e.linkname]),
      );
      expect(whole.filter((e) => e.type !== "symlink").map((e) => e.mode)).toEqual(
        sample.filter((e) => e.type !== "symlink").map((e) => e.mode),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.nat({ max: data.length }), { maxLength: 12 }),
          async (cuts) => {
            expect(await readAll(data, cuts)).toEqual(whole);
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it.skipIf(!existsSync("/usr/bin/tar"))("reads GNU tar's long names (format gnu)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-gnutar-"));
    try {
      const long = `${"d".repeat(120)}/${"f".repeat(120)}`;
      await mkdir(join(dir, "src", "d".repeat(120)), { recursive: true });
      await writeFile(join(dir, "src", long), "gnu");
      execFileSync("/usr/bin/tar", [
        "--format=gnu",
        "-cf",
        join(dir, "a.tar"),
        "-C",
        join(dir, "src"),
        ".",
      ]);
      const entries = await readAll(await readFile(join(dir, "a.tar")));
      const file = entries.find((e) => e.type === "file");
      expect(file?.name).toBe(`./${long}`);
      expect(file?.data?.toString()).toBe("gnu");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a damaged header, reports other entry types, and notices a cut-off entry", async () => {
    const data = packWithHeaders(sample);
    const damaged = Buffer.from(data);
    damaged[3] = (damaged[3] ?? 0) ^ 0x20;
    await expect(readAll(damaged)).rejects.toBeInstanceOf(TarFormatError);

    const hardlink = Buffer.from(packWithHeaders([{ name: "a", type: "file", mode: 0o600 }]));
    hardlink[156] = "1".charCodeAt(0);
    hardlink.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of hardlink.subarray(0, 512)) sum += byte;
    hardlink.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
    expect(await readAll(hardlink)).toEqual([{ name: "a", type: "1", mode: 0 }]);

    await expect(readAll(data.subarray(0, 512 * 4 + 100))).rejects.toThrow(/middle of an entry/);
    // The end-of-archive blocks may be missing: the manifest says whether files are.
    const withoutEnd = data.subarray(0, data.length - END_OF_ARCHIVE.length);
    expect((await readAll(withoutEnd)).length).toBe(sample.length);
  });
});

describe("TarReader passing over bytes", () => {
  const entries: Entry[] = [
    { name: "a", type: "file", mode: 0o600, data: Buffer.alloc(3000, 1) },
    { name: "b", type: "file", mode: 0o600, data: Buffer.alloc(700, 2) },
  ];

  it("says where bytes are needed again and hands the passed-over ones out as a gap", async () => {
    const data = packWithHeaders(entries);
    const reader = new TarReader();
    const events: string[] = [];
    const handle = (e: TarEvent) => {
      events.push(
        e.kind === "data"
          ? `data ${e.bytes.length}`
          : e.kind === "gap"
            ? `gap ${e.length}`
            : e.kind,
      );
    };
    // Before and inside a header: needed now.
    expect(reader.neededFrom(() => 0)).toBe(0);
    await reader.write(data.subarray(0, 600), handle);
    // 88 bytes of a's data read; the handler wants a's bytes from 2000 on.
    expect(reader.neededFrom(() => 2000)).toBe(512 + 2000);
    expect(reader.neededFrom(() => 50)).toBe(600);
    // Wanting none of the rest: needed at b's header (after a's padding).
    expect(reader.neededFrom(() => Number.POSITIVE_INFINITY)).toBe(512 + 3072);
    await reader.skip(512 + 3072 - 600, handle);
    expect(events).toEqual(["file", "data 88", `gap ${3000 - 88}`, "file-end"]);
    // A header cannot be passed over.
    await expect(reader.skip(1, handle)).rejects.toBeInstanceOf(TarFormatError);
    await reader.write(data.subarray(512 + 3072), handle);
    reader.end();
    expect(events.slice(4)).toEqual(["file", "data 700", "file-end"]);
    expect(reader.neededFrom(() => 0)).toBe(Number.POSITIVE_INFINITY);
  });
});
