/** restore --delta's local checks (issue 14, point 4): a stopped server, its WAL archived. */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  partDirs,
  refuseRunningServer,
  refuseUnarchivedWal,
  removeStrays,
} from "../../src/backup/delta-scan.js";
import { RefusedError } from "../../src/errors.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-delta-scan-");

describe("restore --delta's refusals", () => {
  it("refuses a data directory whose postmaster.pid names a live process, not a stale one", async () => {
    await writeFile(join(temp.path, "postmaster.pid"), `${process.pid}\n/data\n`);
    await expect(refuseRunningServer(temp.path)).rejects.toBeInstanceOf(RefusedError);
    await expect(refuseRunningServer(temp.path)).rejects.toThrow(
      /which is running; nothing was written/,
    );
    await writeFile(join(temp.path, "postmaster.pid"), "4194300\n/data\n");
    await expect(refuseRunningServer(temp.path)).resolves.toBeUndefined();
  });

  it("refuses while pg_wal holds segments not archived yet", async () => {
    const status = join(temp.path, "pg_wal", "archive_status");
    await mkdir(status, { recursive: true });
    await writeFile(join(status, "000000010000000000000003.done"), "");
    await expect(refuseUnarchivedWal(temp.path)).resolves.toBeUndefined();
    await writeFile(join(status, "000000010000000000000004.ready"), "");
    await expect(refuseUnarchivedWal(temp.path)).rejects.toThrow(
      /lists 1 WAL files not archived yet \(first: 000000010000000000000004\)/,
    );
  });

  it("removes what the backup lacks in a tablespace's version directory only", async () => {
    const location = join(temp.path, "ts");
    await mkdir(join(location, "PG_15_202209061", "5"), { recursive: true });
    await writeFile(join(location, "PG_15_202209061", "5", "16400"), "stale");
    await writeFile(join(location, "PG_15_202209061", "5", "16401"), "kept");
    await mkdir(join(location, "PG_16_202307071", "5"), { recursive: true });
    await writeFile(join(location, "PG_16_202307071", "5", "16400"), "another server's");
    const file = { part: "16384", size: 4, mode: 0o600, mtime: "", sha256: "" };
    const manifest = makeBackupManifest({
      files: [{ ...file, path: "PG_15_202209061/5/16401" }],
    });
    const parts = partDirs(manifest, join(temp.path, "data"), [{ oid: "16384", location }]);
    await removeStrays(parts, manifest.files);
    expect(await readdir(join(location, "PG_15_202209061", "5"))).toEqual(["16401"]);
    expect(await readdir(join(location, "PG_16_202307071", "5"))).toEqual(["16400"]);
  });
});
