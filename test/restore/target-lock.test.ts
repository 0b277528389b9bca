/** One restore at a time into a data directory (src/restore/target-lock.ts). */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RefusedError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { lockRestoreTarget, restoreLockPath } from "../../src/restore/target-lock.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-target-lock-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("lockRestoreTarget", () => {
  it("refuses a second restore into the directory while the first holds it", async () => {
    const pgdata = join(dir, "data");
    const release = await lockRestoreTarget(pgdata, memoryLogger());
    const lock = restoreLockPath(pgdata);
    expect(lock).toBe(join(dir, ".data.pgha-restore"));
    expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: process.pid });
    const second = lockRestoreTarget(pgdata, memoryLogger());
    await expect(second).rejects.toBeInstanceOf(RefusedError);
    await expect(second).rejects.toThrow(
      /another pgha restore \(process \d+ on .*\) is writing into/,
    );
    // Another directory beside it is not held.
    await (await lockRestoreTarget(join(dir, "other"), memoryLogger()))();
    await release();
    expect(existsSync(lock)).toBe(false);
    await (await lockRestoreTarget(pgdata, memoryLogger()))();
  });

  it("takes over the lock of a restore whose process is gone, with a warning", async () => {
    const pgdata = join(dir, "data");
    // A process that has ended: its pid is free (or someone else's, started later).
    const gone = Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());
    await writeFile(
      restoreLockPath(pgdata),
      JSON.stringify({ pid: gone, host: hostname(), start: "no such start", command: "restore" }),
    );
    const log = memoryLogger();
    const release = await lockRestoreTarget(pgdata, log);
    expect(log.lines.join("\n")).toMatch(/warn: taking over the restore lock .* which is gone/);
    await release();
  });

  it("takes none where the directory's parent does not exist yet", async () => {
    const release = await lockRestoreTarget(join(dir, "new", "data"), memoryLogger());
    expect(existsSync(join(dir, "new"))).toBe(false);
    await release();
  });
});
