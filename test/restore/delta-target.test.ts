/** restore --delta's check of its target (src/restore/delta-target.ts). */
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { keptForDelta } from "../../src/backup/fetch-backup.js";
import type { TablespaceTarget } from "../../src/backup/tablespace-targets.js";
import {
  ClusterMismatchError,
  LocalIoError,
  RefusedError,
  StorageError,
} from "../../src/errors.js";
import {
  deltaTablespaceMap,
  refuseForeignTablespaces,
  refuseForeignTarget,
  systemIdentifierOf,
} from "../../src/restore/delta-target.js";

const BACKUP = { cluster: "main", systemIdentifier: "7714480266467715622" };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-delta-target-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A pg_control whose first 8 bytes hold `id` (the rest is not read). */
function pgControl(id: string): Buffer {
  const bytes = Buffer.alloc(8192);
  bytes.writeBigUInt64LE(BigInt(id), 0);
  return bytes;
}

async function dataDir(id?: string) {
  await writeFile(join(dir, "PG_VERSION"), "15\n");
  await mkdir(join(dir, "global"));
  if (id !== undefined) await writeFile(join(dir, "global", "pg_control"), pgControl(id));
}

describe("refuseForeignTarget", () => {
  it("reads the system identifier pg_controldata prints", () => {
    expect(systemIdentifierOf(pgControl(BACKUP.systemIdentifier))).toBe(BACKUP.systemIdentifier);
    expect(systemIdentifierOf(Buffer.alloc(4))).toBeUndefined();
  });

  it("accepts an empty or missing directory, and a data directory of the backup's cluster", async () => {
    await expect(refuseForeignTarget(dir, BACKUP)).resolves.toBeUndefined();
    await expect(refuseForeignTarget(join(dir, "none"), BACKUP)).resolves.toBeUndefined();
    await dataDir(BACKUP.systemIdentifier);
    await expect(refuseForeignTarget(dir, BACKUP)).resolves.toBeUndefined();
  });

  it("accepts a data directory without pg_control (what a failed delta restore leaves)", async () => {
    await dataDir();
    await expect(refuseForeignTarget(dir, BACKUP)).resolves.toBeUndefined();
  });

  it("accepts a data directory whose pg_control is all zeros (a restore killed before writing it)", async () => {
    await dataDir();
    await writeFile(join(dir, "global", "pg_control"), Buffer.alloc(8192));
    await expect(refuseForeignTarget(dir, BACKUP)).resolves.toBeUndefined();
  });

  it("accepts what a pgha restore killed part way left (its marker), PG_VERSION or not", async () => {
    await mkdir(join(dir, "base", "5"), { recursive: true });
    await writeFile(join(dir, "base", "5", "1259"), "partial");
    await writeFile(join(dir, ".pgha-restore-incomplete"), '{"backup":"x"}\n');
    await expect(refuseForeignTarget(dir, BACKUP)).resolves.toBeUndefined();
    // But not with another cluster's pg_control in it.
    await mkdir(join(dir, "global"));
    await writeFile(join(dir, "global", "pg_control"), pgControl("42"));
    await expect(refuseForeignTarget(dir, BACKUP)).rejects.toBeInstanceOf(ClusterMismatchError);
  });

  it("refuses a directory that is not a data directory, whose files --delta would delete", async () => {
    await writeFile(join(dir, "notes.txt"), "mine");
    const refused = refuseForeignTarget(dir, BACKUP);
    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toThrow(/no PG_VERSION/);
  });

  it("fails, touching nothing, where the target cannot be read (a file, not a directory)", async () => {
    const file = join(dir, "file");
    await writeFile(file, "not a directory");
    const failed = refuseForeignTarget(file, BACKUP);
    await expect(failed).rejects.toBeInstanceOf(LocalIoError);
    await expect(failed).rejects.toThrow(/cannot read .*file/);
  });

  it("refuses another cluster's data directory", async () => {
    await dataDir("6000000000000000001");
    const refused = refuseForeignTarget(dir, BACKUP);
    await expect(refused).rejects.toBeInstanceOf(ClusterMismatchError);
    await expect(refused).rejects.toThrow(/system identifier 6000000000000000001/);
  });
});

describe("restore --delta's tablespaces", () => {
  const ts = (location: string): TablespaceTarget => ({
    oid: "16400",
    name: "ts",
    location,
    mapped: false,
  });

  it("go where the target's own links point, unless --tablespace-map names them", async () => {
    const backup = {
      tablespaces: [
        { oid: "16400", name: "ts" },
        { oid: "16401", name: "other" },
        { oid: "16402", name: "unlinked" },
      ],
    };
    await mkdir(join(dir, "pg_tblspc"), { recursive: true });
    await symlink(join(dir, "copy-ts"), join(dir, "pg_tblspc", "16400"));
    await symlink("../../rel-ts", join(dir, "pg_tblspc", "16401"));
    const map = await deltaTablespaceMap(dir, backup, new Map([["other", "/mapped"]]));
    expect([...map]).toEqual([
      ["other", "/mapped"],
      ["16400", join(dir, "copy-ts")],
    ]);
    // A relative link is taken from pg_tblspc.
    expect((await deltaTablespaceMap(dir, backup, new Map())).get("16401")).toBe(
      join(dir, "..", "rel-ts"),
    );
  });

  it("refuse a link the backup's original data directory, still here, shares (a cp -a copy), unless --tablespace-map names it", async () => {
    const original = join(dir, "main");
    const copy = join(dir, "copy");
    const live = join(dir, "live-ts");
    await mkdir(live);
    for (const pgdata of [original, copy]) {
      await mkdir(join(pgdata, "pg_tblspc"), { recursive: true });
      await symlink(live, join(pgdata, "pg_tblspc", "16400"));
    }
    const backup = { tablespaces: [{ oid: "16400", name: "ts" }], dataDirectory: original };
    const refused = deltaTablespaceMap(copy, backup, new Map());
    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toThrow(
      /points to .*live-ts, which .*main, the data directory the backup was taken from, links to as well/,
    );
    // Named: the operator's word.
    expect((await deltaTablespaceMap(copy, backup, new Map([["ts", live]]))).get("ts")).toBe(live);
    // Into the original itself (by any path to it), or with the original gone, or linking
    // elsewhere: followed.
    expect((await deltaTablespaceMap(original, backup, new Map())).get("16400")).toBe(live);
    const via = join(dir, "via");
    await symlink(original, via);
    expect((await deltaTablespaceMap(via, backup, new Map())).get("16400")).toBe(live);
    // Both linking to a location that does not exist yet: still the original's.
    const notYet = join(dir, "not-yet-ts");
    for (const pgdata of [original, copy]) {
      await rm(join(pgdata, "pg_tblspc", "16400"));
      await symlink(notYet, join(pgdata, "pg_tblspc", "16400"));
    }
    await expect(deltaTablespaceMap(copy, backup, new Map())).rejects.toBeInstanceOf(RefusedError);
    for (const pgdata of [original, copy]) {
      await rm(join(pgdata, "pg_tblspc", "16400"));
      await symlink(live, join(pgdata, "pg_tblspc", "16400"));
    }
    const elsewhere = { ...backup, dataDirectory: join(dir, "gone") };
    expect((await deltaTablespaceMap(copy, elsewhere, new Map())).get("16400")).toBe(live);
    await rm(join(original, "pg_tblspc", "16400"));
    await symlink(join(dir, "its-own-ts"), join(original, "pg_tblspc", "16400"));
    expect((await deltaTablespaceMap(copy, backup, new Map())).get("16400")).toBe(live);
    // A backup taken before the manifest said where it came from: followed.
    expect(
      (await deltaTablespaceMap(copy, { tablespaces: backup.tablespaces }, new Map())).get("16400"),
    ).toBe(live);
  });

  it("refuse a location whose version directory holds something, unless the target links there", async () => {
    const location = join(dir, "primary-ts");
    const pgdata = join(dir, "pgdata");
    await mkdir(join(pgdata, "pg_tblspc"), { recursive: true });
    // Missing or empty: written as a restore writes it.
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).resolves.toBeUndefined();
    await mkdir(join(location, "PG_15_1"), { recursive: true });
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).resolves.toBeUndefined();
    // Another version's directory beside it is not the restore's.
    await mkdir(join(location, "PG_14_1", "5"), { recursive: true });
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).resolves.toBeUndefined();
    await mkdir(join(location, "PG_15_1", "5"));
    const refused = refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1");
    await expect(refused).rejects.toBeInstanceOf(RefusedError);
    await expect(refused).rejects.toThrow(
      /tablespace ts \(16400\) would be rewritten in .*PG_15_1, which is not empty/,
    );
    // A restore into pgdata that did not finish does not vouch for the location (it may
    // have been emptied and taken by another restore since).
    await writeFile(join(pgdata, ".pgha-restore-incomplete"), JSON.stringify({ backup: "x" }));
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).rejects.toBeInstanceOf(RefusedError);
    await rm(join(pgdata, ".pgha-restore-incomplete"));
    // The target's own tablespace.
    await symlink(location, join(pgdata, "pg_tblspc", "16400"));
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).resolves.toBeUndefined();
  });

  it("a restore kept after a storage failure links its tablespaces, so --delta finishes them", async () => {
    const location = join(dir, "ts-loc");
    const pgdata = join(dir, "kept");
    await mkdir(join(location, "PG_15_1", "5"), { recursive: true });
    await mkdir(pgdata);
    await writeFile(join(pgdata, ".pgha-restore-incomplete"), "{}\n");
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).rejects.toBeInstanceOf(RefusedError);
    const reset = new StorageError("reading s3://b/x failed: aborted", { transient: true });
    const kept = await keptForDelta({ resumable: true }, reset, pgdata, [ts(location)]);
    expect(kept?.hint).toMatch(
      /run the same restore with --delta .* or empty it \(and its tablespace directories\)/,
    );
    await expect(
      refuseForeignTablespaces(pgdata, [ts(location)], "PG_15_1"),
    ).resolves.toBeUndefined();
    // Not a storage failure, or not a restore: nothing kept.
    expect(await keptForDelta({ resumable: true }, new Error("EIO"), pgdata, [])).toBe(undefined);
    expect(await keptForDelta({}, reset, pgdata, [])).toBe(undefined);
  });
});
