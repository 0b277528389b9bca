/** The tar path without PostgreSQL: walk, TarUpload into the memory store, fetch back. */

import { createHash } from "node:crypto";
import {
  appendFile,
  mkdir,
  readdir,
  readFile,
  truncate,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { TarUpload } from "../../src/backup/tar-upload.js";
import { walkTree } from "../../src/backup/walk.js";
import { IntegrityError, StorageError } from "../../src/errors.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { fetchQuietly } from "../helpers/backup-fetch.js";
import { makeManifestOf } from "../helpers/builders.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-tar-");

describe("tar upload and fetch", () => {
  it("pads files that shrank, cuts files that grew, skips files that vanished, and round-trips", async () => {
    const src = join(temp.path, "src");
    await mkdir(join(src, "base", "5"), { recursive: true });
    await writeFile(join(src, "PG_VERSION"), "15\n");
    await writeFile(join(src, "base", "5", "shrinks"), Buffer.alloc(3 << 20, 7));
    await writeFile(join(src, "base", "5", "grows"), "0123456789");
    await writeFile(join(src, "base", "5", "vanishes"), "bye");
    await writeFile(join(src, "postmaster.pid"), "123");
    const entries = await walkTree(src, { isDataDirectory: true });
    expect(entries.map((e) => e.path)).not.toContain("postmaster.pid");
    await truncate(join(src, "base", "5", "shrinks"), 1000);
    await appendFile(join(src, "base", "5", "grows"), "more");
    await unlink(join(src, "base", "5", "vanishes"));

    const store = new MemoryStore();
    const upload = await TarUpload.open(
      store,
      "v1/x/base.tar",
      "base",
      { algorithm: "zstd", level: 3 },
      () => undefined,
    );
    for (const entry of entries) {
      if (entry.type === "directory") await upload.addDirectory(entry);
      else await upload.addFile(entry, join(src, entry.path));
    }
    await upload.addBuffer("backup_label", Buffer.from("label\n"));
    const { object, files } = await upload.finish();
    expect(files.map((f) => f.path).sort()).toEqual([
      "PG_VERSION",
      "backup_label",
      "base/5/grows",
      "base/5/shrinks",
    ]);
    expect(object.storedSize).toBeLessThan(object.rawSize);

    const out = join(temp.path, "out");
    const manifest = makeManifestOf([object], files);
    const result = await fetchQuietly(store, manifest, out, 2);
    expect(result.files).toBe(4);
    const shrunk = await readFile(join(out, "base", "5", "shrinks"));
    expect(shrunk.length).toBe(3 << 20);
    expect(shrunk.subarray(0, 1000).every((b) => b === 7)).toBe(true);
    expect(shrunk.subarray(1000).every((b) => b === 0)).toBe(true);
    expect((await readFile(join(out, "base", "5", "grows"))).toString()).toBe("0123456789");
    expect((await readFile(join(out, "backup_label"))).toString()).toBe("label\n");

    // A manifest that disagrees with the data fails the fetch and leaves the target empty.
    const bad = makeManifestOf(
      [object],
      files.map((f) => (f.path === "PG_VERSION" ? { ...f, sha256: "0".repeat(64) } : f)),
    );
    const out2 = join(temp.path, "out2");
    await expect(fetchQuietly(store, bad, out2, 2)).rejects.toBeInstanceOf(IntegrityError);
    expect(await readdir(out2)).toEqual([]);
  });
});

describe("tar upload failures", () => {
  it("reports a store that fails midway as a storage error, without crashing", async () => {
    const src = join(temp.path, "big");
    await writeFile(src, Buffer.alloc(24 << 20, 1));
    const store = new MemoryStore();
    store.put = async (_key, body) => {
      let seen = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > 1 << 16)
          throw new StorageError("connection reset by the store", { transient: true });
      }
      throw new Error("unreachable");
    };
    const upload = await TarUpload.open(
      store,
      "v1/x/base.tar",
      "base",
      { algorithm: "none" },
      () => undefined,
    );
    const entry = {
      path: "big",
      type: "file" as const,
      size: 24 << 20,
      mode: 0o600,
      mtime: new Date(),
    };
    await expect(upload.addFile(entry, src)).rejects.toBeInstanceOf(StorageError);
    await upload.abort(new Error("stop"));
  });
});

describe("a tampered backup", () => {
  it("cannot make fetch write outside the target through a symlink entry", async () => {
    const outside = join(temp.path, "outside");
    await mkdir(outside);
    const payload = Buffer.from("evil");
    const pack = tar.pack();
    pack.entry({ name: "link", type: "symlink", linkname: outside });
    pack.entry({ name: "link/evil", type: "file", size: payload.length, mode: 0o644 }, payload);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
    const data = Buffer.concat(chunks);
    const store = new MemoryStore();
    await store.put("v1/x/base.tar", data);
    const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    const manifest = makeManifestOf(
      [
        {
          part: "base",
          key: "v1/x/base.tar",
          compression: "none",
          rawSize: data.length,
          storedSize: data.length,
          storedSha256: sha(data),
        },
      ],
      [{ part: "base", path: "link/evil", size: 4, mode: 0o644, mtime: "", sha256: sha(payload) }],
    );
    const out = join(temp.path, "target");
    await expect(fetchQuietly(store, manifest, out, 2)).rejects.toThrow();
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(out)).toEqual([]);
  });
});
