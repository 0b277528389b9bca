/**
 * A backup whose manifest and tars come from a crafted or damaged repository: what a
 * fetch may write outside its target, and with which mode bits (issue 12, point 5).
 */
import { chmod, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planBundles } from "../../src/backup/bundle-plan.js";
import { fetchBaseBackup } from "../../src/backup/fetch-backup.js";
import { storeBundles } from "../../src/backup/store-bundles.js";
import { planTablespaceTargets } from "../../src/backup/tablespace-targets.js";
import { walkTree } from "../../src/backup/walk.js";
import { IntegrityError, UsageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { fetchQuietly } from "../helpers/backup-fetch.js";
import { makeBackupManifest, makeManifestOf } from "../helpers/builders.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-crafted-");

const TS_OID = "16400";

/** Stores a data directory (and a tablespace tree) as backup parts; returns its manifest. */
async function storedBackup(
  store: MemoryStore,
  base: string,
  tablespace?: { src: string; location: string; onlyVersionDir: boolean },
): Promise<BackupManifest> {
  const parts = [
    { part: "base", root: base, entries: await walkTree(base, { isDataDirectory: true }) },
  ];
  if (tablespace) {
    const entries = await walkTree(tablespace.src, {
      isDataDirectory: false,
      ...(tablespace.onlyVersionDir ? { onlyTopDirectory: "PG_15_202209061" } : {}),
    });
    parts.push({ part: TS_OID, root: tablespace.src, entries });
  }
  const bundles = planBundles(parts, 1 << 20);
  const deps = {
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 3 } as const,
    jobs: 2,
  };
  const { stored } = storeBundles(deps, "20261121T000000Z", bundles, () => undefined);
  const done = await stored;
  const manifest = makeManifestOf(
    bundles.map((b) => done.get(b)?.object as BackupManifest["objects"][number]),
    bundles.flatMap((b) => done.get(b)?.files ?? []),
  );
  if (tablespace)
    manifest.tablespaces = [{ oid: TS_OID, name: "ts", location: tablespace.location }];
  return manifest;
}

async function dataDirectory(): Promise<string> {
  const base = join(temp.path, "src");
  await mkdir(join(base, "global"), { recursive: true });
  await writeFile(join(base, "PG_VERSION"), "15\n");
  await writeFile(join(base, "global", "1262"), Buffer.alloc(100, 1));
  return base;
}

describe("a fetch of a crafted backup", () => {
  it("never restores setuid, setgid or sticky bits", async () => {
    const base = await dataDirectory();
    await writeFile(join(base, "tool"), "#!/bin/sh\n");
    await chmod(join(base, "tool"), 0o4755);
    await writeFile(join(base, "group-tool"), "#!/bin/sh\n");
    await chmod(join(base, "group-tool"), 0o2750);
    await mkdir(join(base, "shared"));
    await chmod(join(base, "shared"), 0o1777);
    const store = new MemoryStore();
    const manifest = await storedBackup(store, base);
    expect(manifest.files.find((f) => f.path === "tool")?.mode).toBe(0o4755);
    const out = join(temp.path, "out");
    await fetchQuietly(store, manifest, out, 2);
    expect((await stat(join(out, "tool"))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(out, "group-tool"))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(out, "shared"))).mode & 0o7777).toBe(0o777);
  });

  it("calls an object the manifest lists but the repository lacks corrupt (exit 6, not 1)", async () => {
    const store = new MemoryStore();
    const manifest = await storedBackup(store, await dataDirectory());
    const key = manifest.objects[0]?.key as string;
    await store.delete(key);
    const fetched = fetchQuietly(store, manifest, join(temp.path, "out"), 2);
    await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
    await expect(fetched).rejects.toThrow(`${key} is missing`);
  });

  it("creates no directories above a tablespace's original location", async () => {
    const base = await dataDirectory();
    const tsSrc = join(temp.path, "ts-src");
    await mkdir(join(tsSrc, "PG_15_202209061", "5"), { recursive: true });
    await writeFile(join(tsSrc, "PG_15_202209061", "5", "16401"), "rows");
    const store = new MemoryStore();
    const location = join(temp.path, "nowhere", "deep", "ts");
    const manifest = await storedBackup(store, base, {
      src: tsSrc,
      location,
      onlyVersionDir: true,
    });
    const fetched = fetchQuietly(store, manifest, join(temp.path, "out"), 2);
    await expect(fetched).rejects.toBeInstanceOf(UsageError);
    await expect(fetched).rejects.toThrow(/is not a directory on this host; nothing was written/);
    expect(await readdir(temp.path)).not.toContain("nowhere");

    // The user's --tablespace-map decides instead: there pgha makes what it needs.
    const mapped = join(temp.path, "chosen", "ts");
    const result = await fetchBaseBackup(
      { store, log: memoryLogger(), progress: () => undefined, jobs: 2 },
      manifest,
      join(temp.path, "out"),
      new Map([["ts", mapped]]),
    );
    expect(result.tablespaces).toEqual([{ oid: TS_OID, name: "ts", location: mapped }]);
    expect(await readdir(join(mapped, "PG_15_202209061", "5"))).toEqual(["16401"]);
  });

  it("refuses a tablespace tar entry outside the version directory, leaving nothing there", async () => {
    const base = await dataDirectory();
    const tsSrc = join(temp.path, "ts-src");
    await mkdir(join(tsSrc, "PG_15_202209061"), { recursive: true });
    await writeFile(join(tsSrc, "authorized_keys"), "ssh-ed25519 AAAA attacker\n");
    const store = new MemoryStore();
    const location = join(temp.path, "ts-location");
    const manifest = await storedBackup(store, base, {
      src: tsSrc,
      location,
      onlyVersionDir: false,
    });
    const fetched = fetchQuietly(store, manifest, join(temp.path, "out"), 2);
    await expect(fetched).rejects.toBeInstanceOf(IntegrityError);
    await expect(fetched).rejects.toThrow(
      /'authorized_keys', which is outside the tablespace's version directory/,
    );
    expect(await readdir(location)).toEqual([]);
  });

  it.each([
    ["relative", "ts/dir"],
    ["with ..", "/var/lib/../../etc/cron.d"],
    ["the root", "/"],
    ["with a newline", "/srv/ts\n16384 /etc"],
  ])("refuses an original tablespace location %s", (_, location) => {
    const manifest = makeBackupManifest({ tablespaces: [{ oid: TS_OID, name: "ts", location }] });
    expect(() => planTablespaceTargets(manifest, "/srv/restore", new Map())).toThrow(
      IntegrityError,
    );
    // A --tablespace-map entry replaces it: the crafted location is never used.
    expect(planTablespaceTargets(manifest, "/srv/restore", new Map([["ts", "/srv/ts"]]))).toEqual([
      { oid: TS_OID, name: "ts", location: "/srv/ts", mapped: true },
    ]);
  });

  it("refuses a tablespace location that overlaps the data directory", () => {
    const manifest = makeBackupManifest({
      tablespaces: [{ oid: TS_OID, name: "ts", location: "/srv/restore/pg_tblspc_dir" }],
    });
    expect(() => planTablespaceTargets(manifest, "/srv/restore", new Map())).toThrow(UsageError);
    expect(() =>
      planTablespaceTargets(manifest, "/srv/restore/pg_tblspc_dir/x", new Map()),
    ).toThrow(UsageError);
  });
});
