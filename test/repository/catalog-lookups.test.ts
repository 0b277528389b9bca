/**
 * Looking up backups, dump sets and clusters in a repository: "not found" has its own
 * exit code, a cluster the repository does not hold is named with the ones it has, and a
 * manifest that is not JSON (its checksum matching) is corrupt (issue 12, points 5, 11).
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  EXIT_CODES,
  exitCodeOf,
  IntegrityError,
  NotFoundInRepoError,
  UsageError,
} from "../../src/errors.js";
import { readBackupManifest, resolveBackup } from "../../src/repository/backup-manifest.js";
import { listClusters } from "../../src/repository/clusters.js";
import { resolveDump } from "../../src/repository/dump-manifest.js";
import { putJson } from "../../src/repository/json-object.js";
import { backupManifestKey, dumpManifestKey, identityKey } from "../../src/repository/keys.js";
import { encodeContentMeta } from "../../src/repository/object-meta.js";
import { FsStore } from "../../src/storage/fs.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { makeBackupManifest } from "../helpers/builders.js";

/** A repository holding clusters "main" (one backup), "main-2" and "other". */
async function repository(): Promise<MemoryStore> {
  const store = new MemoryStore();
  const manifest = makeBackupManifest();
  await putJson(store, backupManifestKey("main", manifest.id), manifest);
  for (const cluster of ["main-2", "other", "main0"])
    await putJson(store, identityKey(cluster), {});
  return store;
}

/** Stores `text` under key with content metadata that matches it. */
async function putText(store: MemoryStore, key: string, text: string): Promise<void> {
  const body = Buffer.from(text);
  const sha256 = createHash("sha256").update(body).digest("hex");
  await store.put(key, body, {
    metadata: encodeContentMeta({ sha256, rawSize: body.length, compression: "none" }),
  });
}

describe("not found in the repository", () => {
  it("has its own exit code, neither wal-fetch's 'not available' (1) nor 'refused' (3)", () => {
    expect(EXIT_CODES.notFoundInRepo).not.toBe(EXIT_CODES.notFound);
    expect(EXIT_CODES.notFoundInRepo).not.toBe(EXIT_CODES.refused);
    expect(exitCodeOf(new NotFoundInRepoError("x"))).toBe(EXIT_CODES.notFoundInRepo);
  });

  it("is what a missing backup or dump set id, or 'latest' of an empty cluster, throws", async () => {
    const store = await repository();
    await expect(resolveBackup(store, "main", "20990101T000000Z")).rejects.toBeInstanceOf(
      NotFoundInRepoError,
    );
    await expect(resolveDump(store, "main", "latest")).rejects.toBeInstanceOf(NotFoundInRepoError);
    await expect(resolveBackup(store, "other", "latest")).rejects.toThrow(
      /cluster 'other' has no backups/,
    );
  });

  it("names the clusters the repository has when the cluster is not one of them", async () => {
    const store = await repository();
    expect(await listClusters(store)).toEqual(["main", "main-2", "main0", "other"]);
    const missing = resolveBackup(store, "mian", "latest");
    await expect(missing).rejects.toBeInstanceOf(NotFoundInRepoError);
    await expect(missing).rejects.toThrow(/holds no cluster 'mian'/);
    await expect(missing).rejects.toMatchObject({
      hint: expect.stringMatching(/main, main-2, main0, other/),
    });
    expect(await listClusters(new MemoryStore())).toEqual([]);
  });

  it("lists the clusters of a local repository alike", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-clusters-"));
    try {
      const store = new FsStore(dir);
      expect(await listClusters(store)).toEqual([]);
      for (const cluster of ["b", "a.x", "a", "a0"]) await putJson(store, identityKey(cluster), {});
      await putJson(store, backupManifestKey("a", "20261121T000000Z"), {});
      expect(await listClusters(store)).toEqual(["a", "a.x", "a0", "b"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an id that is not an id is a usage error", async () => {
    await expect(resolveBackup(await repository(), "main", "yesterday")).rejects.toBeInstanceOf(
      UsageError,
    );
  });
});

describe("a manifest whose checksum matches but whose content does not parse", () => {
  it.each([
    ["not JSON", '{"kind": "base-backup", '],
    ["not a manifest", "[1, 2, 3]"],
  ])("is corrupt (%s), and the error names the object", async (_, text) => {
    const store = new MemoryStore();
    const key = backupManifestKey("main", "20261121T000000Z");
    await putText(store, key, text);
    const read = readBackupManifest(store, "main", "20261121T000000Z");
    await expect(read).rejects.toBeInstanceOf(IntegrityError);
    await expect(read).rejects.toThrow(key);
  });

  it("is corrupt for a dump set as well", async () => {
    const store = new MemoryStore();
    const key = dumpManifestKey("main", "20261121T000000Z");
    await putText(store, key, "\u0000garbage");
    await expect(resolveDump(store, "main", "20261121T000000Z")).rejects.toBeInstanceOf(
      IntegrityError,
    );
  });
});
