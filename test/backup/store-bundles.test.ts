/**
 * Bundles stored and fetched by N job workers (the real worker threads) against the memory
 * store: the round trip, and what one failing job or upload does to the others.
 */

import { chmod, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Bundle, planBundles } from "../../src/backup/bundle-plan.js";
import { spareWorkers } from "../../src/backup/job-pool.js";
import { type StoredBundle, storeBundles } from "../../src/backup/store-bundles.js";
import { walkTree } from "../../src/backup/walk.js";
import { IntegrityError, LocalIoError, StorageError } from "../../src/errors.js";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { PutBody, PutOptions } from "../../src/storage/object-store.js";
import { fetchQuietly } from "../helpers/backup-fetch.js";
import { makeManifestOf } from "../helpers/builders.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";
import { treeDigest } from "../helpers/tree-digest.js";

const temp = freshDirPerTest("pgha-jobs-");

/** A data directory of 3 databases with files from empty to 1.5 MiB. */
async function makeTree(dir: string): Promise<void> {
  await writeFile(join(dir, "PG_VERSION"), "15\n");
  for (const db of [1, 5, 16384]) {
    await mkdir(join(dir, "base", String(db)), { recursive: true });
    for (let i = 0; i < 12; i++) {
      const size = [0, 100, 8192, 300_000, 1_500_000][i % 5] ?? 0;
      const data = Buffer.alloc(size);
      for (let at = 0; at < size; at += 4096) data.write(`${db}/${i}/${at}`, at);
      await writeFile(join(dir, "base", String(db), `${1000 + i}`), data, { mode: 0o600 });
    }
  }
  await mkdir(join(dir, "global"), { mode: 0o750 });
  await writeFile(join(dir, "global", "1262"), Buffer.alloc(8192, 1));
}

/** makeTree under root/src, `adjust`ed, walked, and cut into bundles of `limit` bytes. */
async function plannedTree(limit: number, adjust?: (src: string) => Promise<void>) {
  const src = join(temp.path, "src");
  await mkdir(src);
  await makeTree(src);
  await adjust?.(src);
  const entries = await walkTree(src, { isDataDirectory: true });
  return { src, entries, bundles: planBundles([{ part: "base", root: src, entries }], limit) };
}

/** storeBundles of backup 20261121T000000Z of cluster main (zstd:3) with `jobs` jobs. */
function storeRun(
  store: MemoryStore,
  bundles: Bundle[],
  jobs: number,
  onBytes: (n: number) => void = () => undefined,
) {
  const deps = {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 3 } as const,
    jobs,
  };
  return storeBundles(deps, "20261121T000000Z", bundles, onBytes);
}

/** Stores the bundles with `jobs` jobs; returns a manifest of them. */
async function storedBackup(store: MemoryStore, bundles: Bundle[], jobs: number) {
  return manifestOfStored(bundles, await storeRun(store, bundles, jobs).stored);
}

function manifestOfStored(bundles: Bundle[], stored: Map<Bundle, StoredBundle>) {
  return makeManifestOf(
    bundles.map((b) => stored.get(b)?.object as BackupManifest["objects"][number]),
    bundles.flatMap((b) => stored.get(b)?.files ?? []),
  );
}

// Each run starts worker threads that load the sources through tsx: seconds on a busy machine.
describe("bundles stored and fetched by parallel jobs", { timeout: 30_000 }, () => {
  it("round-trips a tree cut into many bundles with 3 jobs, identical to the source", async () => {
    const { src, entries, bundles } = await plannedTree(1 << 20);
    expect(bundles.length).toBeGreaterThan(5);
    const store = new MemoryStore();
    let progressed = 0;
    const stored = await storeRun(store, bundles, 3, (n) => {
      progressed += n;
    }).stored;
    expect(progressed).toBe(entries.reduce((s, e) => s + e.size, 0));
    const manifest = manifestOfStored(bundles, stored);
    expect(new Set(manifest.objects.map((o) => o.key)).size).toBe(bundles.length);

    for (const jobs of [1, 3]) {
      const out = join(temp.path, `out-${jobs}`);
      const result = await fetchQuietly(store, manifest, out, jobs);
      expect(result.files).toBe(manifest.files.length);
      expect(await treeDigest(out)).toEqual(await treeDigest(src));
    }
    // A pool that closed without a failure leaves its idle workers to the next one.
    expect(spareWorkers()).toBeGreaterThanOrEqual(3);
    expect(spareWorkers()).toBeLessThanOrEqual(8);
  });

  for (const when of ["before", "while", "after"] as const) {
    it(`fails the whole run when one upload fails ${when} reading its body, once every job has stopped`, async () => {
      const { bundles } = await plannedTree(1 << 20);
      const store = new MemoryStore();
      const put = store.put.bind(store);
      let active = 0;
      let calls = 0;
      store.put = async (key: string, body: PutBody, options?: PutOptions) => {
        active++;
        try {
          if (++calls === 2) {
            // A refused request, a connection reset once some of the body went out, or a
            // completion that fails once the job is done and has taken its next bundle.
            if (when === "while") for await (const _ of body as AsyncIterable<Buffer>) break;
            if (when === "after") for await (const _ of body as AsyncIterable<Buffer>);
            throw new StorageError("injected: upload failed", { transient: false });
          }
          return await put(key, body, options);
        } finally {
          active--;
        }
      };
      const failed = storeRun(store, bundles, 3).stored;
      await expect(failed).rejects.toThrow(/injected: upload failed/);
      await expect(failed).rejects.toBeInstanceOf(StorageError);
      // Nothing is left running that could store an object after the caller cleaned up.
      expect(active).toBe(0);
      if (when === "before") expect(calls).toBeLessThan(bundles.length);
    });
  }

  it("says when every file is read while the last uploads still finish", async () => {
    // Two bundles for three jobs: nothing waits for a job.
    const { bundles } = await plannedTree(8 << 20);
    expect(bundles.length).toBe(2);
    for (const outcome of ["stored", "failed"] as const) {
      const store = new MemoryStore();
      const put = store.put.bind(store);
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let waiting = 0;
      store.put = async (key: string, body: PutBody, options?: PutOptions) => {
        const chunks: Buffer[] = [];
        for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
        waiting++;
        await gate;
        if (outcome === "failed")
          throw new StorageError("injected: completion failed", { transient: false });
        return put(key, Buffer.concat(chunks), options);
      };
      const run = storeRun(store, bundles, 3);
      await run.read;
      const settled = await Promise.race([
        run.stored.then(
          () => "settled",
          () => "settled",
        ),
        new Promise((resolve) => setTimeout(() => resolve("pending"), 200)),
      ]);
      expect(settled).toBe("pending");
      expect(waiting).toBe(2);
      release();
      if (outcome === "stored") expect((await run.stored).size).toBe(2);
      else await expect(run.stored).rejects.toThrow(/injected: completion failed/);
    }
  });

  it("fails with the job's own error when a file cannot be read", async () => {
    const { src, bundles } = await plannedTree(1 << 20);
    // A file that turned into a directory since the walk: reading it fails (EISDIR).
    await rm(join(src, "base", "5", "1003"));
    await mkdir(join(src, "base", "5", "1003"));
    const store = new MemoryStore();
    const failed = storeRun(store, bundles, 3).stored;
    await expect(failed).rejects.toBeInstanceOf(LocalIoError);
    await expect(failed).rejects.toThrow(/cannot read .*1003/);
  });

  it("fails a fetch with one corrupt object of many and leaves the target empty", async () => {
    const { bundles } = await plannedTree(1 << 20);
    const store = new MemoryStore();
    const manifest = await storedBackup(store, bundles, 2);
    const victim = manifest.objects[3]?.key ?? "";
    const { body } = await store.get(victim);
    const bytes = Buffer.concat(await body.toArray());
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    await store.put(victim, bytes);
    const out = join(temp.path, "out");
    await expect(fetchQuietly(store, manifest, out, 3)).rejects.toBeInstanceOf(IntegrityError);
    expect(await readdir(out)).toEqual([]);
    // No job writes on after the failure.
    await new Promise((r) => setTimeout(r, 200));
    expect(await readdir(out)).toEqual([]);
  });

  it("reads directory modes from the tar whatever order the objects are extracted in", async () => {
    // One entry per bundle: directories and their files always land in different objects.
    const { src, bundles } = await plannedTree(1, (dir) => chmod(join(dir, "base"), 0o750));
    const store = new MemoryStore();
    const manifest = await storedBackup(store, bundles, 3);
    // Smallest first here: files before the directories that hold them.
    manifest.objects.reverse();
    const out = join(temp.path, "out");
    await fetchQuietly(store, manifest, out, 3);
    expect(await treeDigest(out)).toEqual(await treeDigest(src));
  });
});
