/** One restore at a time into a data directory (src/restore/target-lock.ts). */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RefusedError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { lockRestoreTarget, restoreLockPaths } from "../../src/restore/target-lock.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-target-lock-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** The pid of a process that has ended. */
const gonePid = () => Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());

async function stale(path: string): Promise<void> {
  await writeFile(
    path,
    JSON.stringify({
      pid: gonePid(),
      host: hostname(),
      start: "gone",
      command: "restore",
      nonce: "x",
    }),
  );
}

describe("lockRestoreTarget", () => {
  it("refuses a second restore into the directory while the first holds it", async () => {
    const pgdata = join(dir, "data");
    const release = await lockRestoreTarget(pgdata, memoryLogger());
    const [beside] = await restoreLockPaths(pgdata);
    expect(beside).toBe(join(dir, ".data.pgha-restore"));
    expect(JSON.parse(await readFile(beside, "utf8"))).toMatchObject({ pid: process.pid });
    const second = lockRestoreTarget(pgdata, memoryLogger());
    await expect(second).rejects.toBeInstanceOf(RefusedError);
    await expect(second).rejects.toThrow(
      /another pgha restore \(process \d+ on .*\) is writing into/,
    );
    // Another directory beside it is not held.
    await (await lockRestoreTarget(join(dir, "other"), memoryLogger()))();
    await release();
    expect(existsSync(beside)).toBe(false);
    await (await lockRestoreTarget(pgdata, memoryLogger()))();
    // Nothing is left beside the directory.
    expect(await readdir(dir)).toEqual([]);
  });

  it("takes over the lock of a restore whose process is gone, with a warning", async () => {
    const pgdata = join(dir, "data");
    const [beside] = await restoreLockPaths(pgdata);
    await stale(beside);
    const log = memoryLogger();
    const release = await lockRestoreTarget(pgdata, log);
    expect(log.lines.join("\n")).toMatch(/warn: taking over the restore lock .* which is gone/);
    await release();
  });

  it("lets one of two restores taking over the same stale lock at once win", async () => {
    const pgdata = join(dir, "data");
    const [beside] = await restoreLockPaths(pgdata);
    for (let round = 0; round < 20; round++) {
      await stale(beside);
      const results = await Promise.allSettled([
        lockRestoreTarget(pgdata, memoryLogger()),
        lockRestoreTarget(pgdata, memoryLogger()),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(RefusedError);
      await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
      expect(existsSync(beside)).toBe(false);
    }
  });

  it("locks in /tmp where the parent cannot be written, and each place sees the other", async () => {
    // The parent does not exist yet: the shared place.
    const pgdata = join(dir, "new", "data");
    const [beside, shared] = await restoreLockPaths(pgdata);
    const release = await lockRestoreTarget(pgdata, memoryLogger());
    expect(existsSync(shared)).toBe(true);
    // Once the parent exists, a restore that could lock beside it is still refused.
    await mkdir(join(dir, "new"));
    await expect(lockRestoreTarget(pgdata, memoryLogger())).rejects.toBeInstanceOf(RefusedError);
    expect(existsSync(beside)).toBe(false);
    await release();
    expect(existsSync(shared)).toBe(false);
  });
});
