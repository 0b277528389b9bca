/** The spool lock: a PID the kernel handed to another process does not keep a dead holder's lock. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import {
  adoptSpool,
  callId,
  holderAlive,
  holdsLock,
  isWriteLeftover,
  type LockRecord,
  processStart,
  releaseLock,
  spoolDir,
  stopSpoolProcesses,
  takeLock,
} from "../../src/wal/spool.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-spool-");

describe.skipIf(!existsSync("/proc/self/stat"))("spool lock", () => {
  it("is taken over when its PID now belongs to another archiver (another data directory's)", async () => {
    // Another pgha archiver: its argv holds the command word the lock names.
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)", "archiver"]);
    try {
      await new Promise((resolve) => other.once("spawn", resolve));
      const pid = other.pid as number;
      const dead: LockRecord = {
        pid,
        host: hostname(),
        command: "archiver",
        startedAt: "2026-11-30T00:00:00.000Z",
        start: `${processStart(pid)?.split("/")[0]}/1`, // that PID, in an earlier process
      };
      expect(holderAlive(dead)).toBe(false);
      expect(holderAlive({ ...dead, start: processStart(pid) })).toBe(true);

      await writeFile(join(temp.path, "lock"), JSON.stringify(dead));
      expect(await takeLock(temp.path, "archiver")).toBe(true);
      const now = JSON.parse(await readFile(join(temp.path, "lock"), "utf8")) as LockRecord;
      expect(now.pid).toBe(process.pid);
      expect(now.start).toBe(processStart(process.pid));
    } finally {
      other.kill();
    }
  });

  it("stays with a live holder", async () => {
    expect(await takeLock(temp.path, "vitest")).toBe(true);
    expect(await takeLock(temp.path, "vitest")).toBe(false);
  });

  it("tells its holder when it was removed or replaced (the holder then stops)", async () => {
    expect(await takeLock(temp.path, "vitest")).toBe(true);
    expect(holdsLock(temp.path)).toBe(true);
    await writeFile(join(temp.path, "lock"), "garbage");
    expect(holdsLock(temp.path)).toBe(false);
    await rm(join(temp.path, "lock"));
    expect(holdsLock(temp.path)).toBe(false);
  });
});

describe.skipIf(!existsSync("/proc/self/stat"))("stopSpoolProcesses", () => {
  it("also stops a process that was started but has not taken the spool yet", async () => {
    // A prefetcher a wal-fetch just started, still loading: no lock yet, only its pid.
    const pgdata = join(temp.path, "data");
    const spool = spoolDir(pgdata, "prefetch");
    await mkdir(spool, { recursive: true });
    const starting = spawn(process.execPath, [
      "-e",
      "setTimeout(() => {}, 20000)",
      "prefetcher",
      "--pgdata",
      pgdata,
    ]);
    const exited = new Promise((resolve) => starting.on("exit", resolve));
    try {
      await writeFile(join(spool, "starting"), `${starting.pid}\n`);
      await stopSpoolProcesses(pgdata, 2000);
      await expect(
        Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 3000))]),
      ).resolves.not.toBe("still running");
    } finally {
      starting.kill("SIGKILL");
    }
  });

  it("leaves alone a process whose PID the file names but that is not that starter", async () => {
    const pgdata = join(temp.path, "data");
    const spool = spoolDir(pgdata, "prefetch");
    await mkdir(spool, { recursive: true });
    // Another data directory's prefetcher got that PID.
    const other = spawn(process.execPath, [
      "-e",
      "setTimeout(() => {}, 20000)",
      "prefetcher",
      "--pgdata",
      join(temp.path, "other"),
    ]);
    const exited = new Promise((resolve) => other.on("exit", resolve));
    try {
      await writeFile(join(spool, "starting"), `${other.pid}\n`);
      await stopSpoolProcesses(pgdata, 2000);
      await expect(
        Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 500))]),
      ).resolves.toBe("still running");
    } finally {
      other.kill("SIGKILL");
    }
  });
});

describe("isWriteLeftover", () => {
  it("knows the temporaries of writeAtomically and of a download, nothing else", () => {
    for (const name of ["status.json.tmp-0a1b2c3d", "window.tmp-ffffffff", ".pgha-tmp-x-0a1b2c3d"])
      expect(isWriteLeftover(name), name).toBe(true);
    for (const name of ["status.json", "window", "000000010000000000000001", "lock", "a.tmp-xyz"])
      expect(isWriteLeftover(name), name).toBe(false);
  });
});

describe("adoptSpool", () => {
  const withText = (text: string) =>
    resolveConfig({ flags: { repo: "/srv/a" }, env: {}, file: { path: "/c", values: {}, text } });

  it("records the starting call's id only when that call read the config this process read", async () => {
    const started = callId(["wal-push"], {}, "{}\n");
    expect(await adoptSpool(temp.path, "vitest", withText('{"cluster": "b"}'), started)).toBe(true);
    await expect(readFile(join(temp.path, "id"), "utf8")).rejects.toThrow(/ENOENT/);
    await releaseLock(temp.path);
    expect(await adoptSpool(temp.path, "vitest", withText("{}\n"), started)).toBe(true);
    expect(await readFile(join(temp.path, "id"), "utf8")).toBe(`${started}\n`);
  });
});
