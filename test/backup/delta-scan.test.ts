/** restore --delta's local checks (issue 14, point 4): a stopped server, its WAL archived. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { refuseRunningServer, refuseUnarchivedWal } from "../../src/backup/delta-scan.js";
import { RefusedError } from "../../src/errors.js";
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
});
