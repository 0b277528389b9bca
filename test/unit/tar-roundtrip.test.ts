/** The tar path without PostgreSQL: walk, TarUpload into the memory store, fetch back. */
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  truncate,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fetchBaseBackup } from "../../src/backup/fetch-backup.js";
import { TarUpload } from "../../src/backup/tar-upload.js";
import { walkTree } from "../../src/backup/walk.js";
import { IntegrityError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import type { BackupFileEntry, BackupManifest } from "../../src/repository/backup-manifest.js";
import { MemoryStore } from "../../src/storage/memory.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-tar-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function manifestFor(files: BackupFileEntry[], objects: BackupManifest["objects"]): BackupManifest {
  return {
    format: 1,
    kind: "base-backup",
    id: "20261121T000000Z",
    cluster: "main",
    label: null,
    pinned: false,
    pgVersion: "15",
    pgVersionNum: 150000,
    systemIdentifier: "1",
    walSegmentSize: 16 << 20,
    timeline: 1,
    startLsn: "0/1",
    stopLsn: "0/2",
    startWal: "000000010000000000000001",
    stopWal: "000000010000000000000001",
    startTime: "",
    stopTime: "",
    fromStandby: false,
    compression: "zstd:3",
    rawBytes: objects.reduce((s, o) => s + o.rawSize, 0),
    storedBytes: 0,
    tablespaces: [],
    objects,
    files,
    backupLabel: "",
    tablespaceMap: null,
  };
}

describe("tar upload and fetch", () => {
  it("pads files that shrank, cuts files that grew, skips files that vanished, and round-trips", async () => {
    const src = join(dir, "src");
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

    const out = join(dir, "out");
    const manifest = manifestFor(files, [object]);
    const result = await fetchBaseBackup(
      { store, log: memoryLogger(), progress: () => undefined },
      manifest,
      out,
      new Map(),
    );
    expect(result.files).toBe(4);
    const shrunk = await readFile(join(out, "base", "5", "shrinks"));
    expect(shrunk.length).toBe(3 << 20);
    expect(shrunk.subarray(0, 1000).every((b) => b === 7)).toBe(true);
    expect(shrunk.subarray(1000).every((b) => b === 0)).toBe(true);
    expect((await readFile(join(out, "base", "5", "grows"))).toString()).toBe("0123456789");
    expect((await readFile(join(out, "backup_label"))).toString()).toBe("label\n");

    // A manifest that disagrees with the data fails the fetch and leaves the target empty.
    const bad = manifestFor(
      files.map((f) => (f.path === "PG_VERSION" ? { ...f, sha256: "0".repeat(64) } : f)),
      [object],
    );
    const out2 = join(dir, "out2");
    await expect(
      fetchBaseBackup(
        { store, log: memoryLogger(), progress: () => undefined },
        bad,
        out2,
        new Map(),
      ),
    ).rejects.toBeInstanceOf(IntegrityError);
    expect(await readdir(out2)).toEqual([]);
  });
});
