import {
  chown,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { StorageError, UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { FsStore, HEADER_BYTES, MARKER_NAME } from "../../src/storage/fs.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { readAll } from "../../src/storage/streams.js";
import { describeConformance } from "../helpers/store-conformance.js";

describeConformance(
  "fs",
  async () => {
    const root = await mkdtemp(join(tmpdir(), "pgha-fs-"));
    return { store: new FsStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  {
    capabilities: { atomicIfAbsent: true, atomicReplace: true, durableWhenVisible: false },
    atomicIfAbsent: true,
    largeBody: 12 * 1024 * 1024,
  },
);

async function listed(store: ObjectStore, prefix = "") {
  const out: { key: string; size: number }[] = [];
  for await (const entry of store.list(prefix)) out.push({ key: entry.key, size: entry.size });
  return out;
}

/** An object as pgha wrote them before headers were padded: the header line is just long enough. */
function legacyObject(metadata: Record<string, string>, body: string): string {
  return `PGHA-OBJECT-1 ${JSON.stringify(metadata)}\n${body}`;
}

describe("FsStore specifics", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-fs-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("leaves no temporary file behind after a failed write", async () => {
    const store = new FsStore(dir);
    async function* failing() {
      yield Buffer.from("partial");
      throw new Error("broken source");
    }
    await expect(store.put("d/k", Readable.from(failing()))).rejects.toThrow();
    expect(await readdir(join(dir, "d"))).toEqual([]);
  });

  it("a delete removes the directories it leaves empty, up to the root, and no other", async () => {
    const store = new FsStore(dir);
    await store.put("c/backups/B1/base.1.tar", Buffer.from("1"));
    await store.put("c/backups/B1/manifest.json", Buffer.from("m"));
    await store.put("c/backups/B2/manifest.json", Buffer.from("m"));
    await store.delete("c/backups/B1/base.1.tar");
    expect(await readdir(join(dir, "c", "backups", "B1"))).toEqual(["manifest.json"]);
    await store.delete("c/backups/B1/manifest.json");
    expect(await readdir(join(dir, "c", "backups"))).toEqual(["B2"]);
    await store.delete("c/backups/B2/manifest.json");
    expect((await readdir(dir)).filter((name) => name !== MARKER_NAME)).toEqual([]);
    expect((await stat(dir)).isDirectory()).toBe(true);
    // A directory holding something that is not an object stays.
    await store.put("c/d/k", Buffer.from("k"));
    await writeFile(join(dir, "c", "d", "note"), "an operator's file");
    await store.delete("c/d/k");
    expect(await readdir(join(dir, "c", "d"))).toEqual(["note"]);
  });

  it("a put into a directory that deletes keep emptying always lands", async () => {
    const store = new FsStore(dir);
    await store.put("c/backups/B/first", Buffer.from("x"));
    for (let round = 0; round < 200; round++) {
      // The directory's only object deleted while the next one is put into it: the delete's
      // rmdir may run between the put's mkdir and its open.
      const put = store.put(`c/backups/B/k${round}`, Buffer.from("y"));
      await store.delete(`c/backups/B/${round === 0 ? "first" : `k${round - 1}`}`);
      await put;
    }
    expect(await listed(store, "c/")).toEqual([{ key: "c/backups/B/k199", size: 1 }]);
  });

  it("writes every header exactly 4096 bytes long and marks a store it creates", async () => {
    const root = join(dir, "new", "repo");
    const store = new FsStore(root);
    await store.put("a/b", Buffer.from("body"), { metadata: { "pgha-x": "1" } });
    const bytes = await readFile(join(root, "a/b"));
    expect(bytes.length).toBe(HEADER_BYTES + 4);
    expect(bytes.indexOf(10)).toBe(HEADER_BYTES - 1);
    expect(bytes.subarray(0, 14).toString()).toBe("PGHA-OBJECT-1 ");
    expect(bytes.subarray(HEADER_BYTES).toString()).toBe("body");
    expect(JSON.parse(await readFile(join(root, MARKER_NAME), "utf8"))).toEqual({
      format: "pgha-local-store",
      headerBytes: HEADER_BYTES,
    });
    // Readable like the objects (0640: the server user and root's group both use a repository).
    const mode = async (file: string) => (await stat(join(root, file))).mode & 0o777;
    expect(await mode("a/b")).toBe(0o640 & ~process.umask());
    expect(await mode(MARKER_NAME)).toBe(await mode("a/b"));
    expect(await listed(store)).toEqual([{ key: "a/b", size: 4 }]);
  });

  it("marks an existing empty root at the first put", async () => {
    await new FsStore(dir).put("v1/x", Buffer.from("x"));
    expect((await readdir(dir)).sort()).toEqual([MARKER_NAME, "v1"]);
  });

  it("lists a marked store from stat, without opening the objects", async () => {
    const store = new FsStore(dir);
    await store.put("l/one", Buffer.alloc(10), { metadata: { "pgha-a": "1" } });
    await store.put("l/two", Buffer.alloc(5000));
    // Destroy one header without changing the file size: list must not notice, head must.
    const handle = await open(join(dir, "l/one"), "r+");
    await handle.write(Buffer.from("X".repeat(HEADER_BYTES - 1)), 0, HEADER_BYTES - 1, 0);
    await handle.close();
    expect(await listed(new FsStore(dir), "l/")).toEqual([
      { key: "l/one", size: 10 },
      { key: "l/two", size: 5000 },
    ]);
    await expect(store.head("l/one")).rejects.toBeInstanceOf(StorageError);
  });

  it("reads and lists objects written before headers were padded, in an unmarked store", async () => {
    await mkdir(join(dir, "old"));
    await writeFile(join(dir, "old/x"), legacyObject({ "pgha-a": "1" }, "hello"));
    await writeFile(join(dir, "old/y"), legacyObject({}, ""));
    const store = new FsStore(dir);
    expect(await store.head("old/x")).toEqual({
      key: "old/x",
      size: 5,
      metadata: { "pgha-a": "1" },
    });
    expect((await readAll((await store.get("old/x")).body)).toString()).toBe("hello");
    // New objects beside old ones: the root is not empty, so the store stays unmarked.
    await store.put("old/z", Buffer.from("new!"));
    await store.put("new/w", Buffer.alloc(3));
    expect(await readdir(dir)).not.toContain(MARKER_NAME);
    expect(await listed(store)).toEqual([
      { key: "new/w", size: 3 },
      { key: "old/x", size: 5 },
      { key: "old/y", size: 0 },
      { key: "old/z", size: 4 },
    ]);
  });

  it("lists an object that is not a pgha object as it is (marked or not), and fails to read it", async () => {
    await mkdir(join(dir, "d"));
    await writeFile(join(dir, "d/bad"), "no header here");
    const unmarked = new FsStore(dir);
    // One damaged file must not break every listing of its prefix (backup ids, verify).
    expect(await listed(unmarked)).toEqual([{ key: "d/bad", size: 14 }]);
    await expect(unmarked.get("d/bad")).rejects.toMatchObject({ damaged: true });
    const marked = new FsStore(await mkdtemp(join(tmpdir(), "pgha-fs-marked-")));
    await marked.put("d/good", Buffer.from("x"));
    await writeFile(join(marked.root, "d/bad"), "short");
    expect(await listed(marked)).toEqual([
      { key: "d/bad", size: 5 },
      { key: "d/good", size: 1 },
    ]);
    await expect(marked.head("d/bad")).rejects.toBeInstanceOf(StorageError);
    await rm(marked.root, { recursive: true, force: true });
  });

  it("refuses metadata that does not fit in the header (S3 could carry it)", async () => {
    const store = new FsStore(dir);
    // 2047 characters pass the 2 KiB metadata rule; JSON escapes each quote into two.
    const error = await store
      .put("m/k", Buffer.from("x"), { metadata: { "pgha-q": '"'.repeat(2040) } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/too large for a local object header/);
    expect(await listed(store)).toEqual([]);
  });
});

/** Root and the PostgreSQL user share a repository: what root creates gets the root dir's owner. */
describe.skipIf(process.geteuid?.() !== 0)("FsStore run as root", () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "pgha-fs-owner-"));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });
  const owners = async (root: string, paths: string[]) =>
    Promise.all(
      paths.map(async (p) => {
        const info = await stat(join(root, p));
        return `${p} ${info.uid}:${info.gid}`;
      }),
    );

  it("gives new directories, objects and the marker the repository root's owner and group", async () => {
    const root = join(base, "repo");
    await mkdir(root);
    await chown(root, 4242, 4343);
    const store = new FsStore(root);
    await store.put("v1/clusters/main/backups/b1/manifest.json", Buffer.from("{}"));
    await store.put("v1/clusters/main/backups/b1/manifest.json", Buffer.from("{1}"));
    const paths = [
      "v1",
      "v1/clusters",
      "v1/clusters/main",
      "v1/clusters/main/backups/b1",
      "v1/clusters/main/backups/b1/manifest.json",
      MARKER_NAME,
    ];
    expect(await owners(root, paths)).toEqual(paths.map((p) => `${p} 4242:4343`));
    // Nothing but the objects: no temporary file was left with another owner.
    expect(await readdir(join(root, "v1/clusters/main/backups/b1"))).toEqual(["manifest.json"]);
  });

  it("creates a missing root with the owner of its nearest existing ancestor", async () => {
    await chown(base, 4242, 4343);
    const root = join(base, "a", "repo");
    await new FsStore(root).put("x/y", Buffer.from("z"));
    const paths = ["a", "a/repo", "a/repo/x", "a/repo/x/y"];
    expect(await owners(base, paths)).toEqual(paths.map((p) => `${p} 4242:4343`));
  });

  it("leaves ownership alone when not run as root", async () => {
    const root = join(base, "repo");
    await mkdir(root);
    await chown(root, 4242, 4343);
    await new FsStore(root, { euid: 1000 }).put("x/y", Buffer.from("z"));
    expect(await owners(root, ["x", "x/y"])).toEqual(["x 0:0", "x/y 0:0"]);
  });
});

describe("a local repository location", () => {
  it("that names a file (or another non-directory) is refused with a hint; a new path is fine", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-repo-file-"));
    try {
      const file = join(dir, "pgha.json");
      await writeFile(file, "{}");
      const opening = (repo: string) =>
        openStore(resolveConfig({ flags: { repo }, env: {}, file: undefined }), memoryLogger());
      // Before: a file read as an empty repository (wal-fetch "not available") and every
      // write failed later, as a storage error.
      await expect(opening(file)).rejects.toBeInstanceOf(UsageError);
      await expect(opening(file)).rejects.toThrow(`the repository ${file} is a file`);
      await expect(opening(file)).rejects.toMatchObject({ hint: expect.stringMatching(/--repo/) });
      await expect(opening(join(dir, "new-repo"))).resolves.toBeDefined();
      await expect(opening(dir)).resolves.toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
