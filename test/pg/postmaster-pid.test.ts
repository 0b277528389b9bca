/** Which server postmaster.pid names: live, dead, garbage, missing, unreadable. */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { processRuns } from "../../src/local-process.js";
import { livePostmasterPid, postmasterState } from "../../src/pg/postmaster-pid.js";

let pgdata: string;
beforeEach(async () => {
  pgdata = await mkdtemp(join(tmpdir(), "pgha-pidfile-"));
});
afterEach(() => rm(pgdata, { recursive: true, force: true }));

const pidFile = (first: string) =>
  writeFile(join(pgdata, "postmaster.pid"), `${first}\n${pgdata}\n1700000000\n5432\n`);

describe("postmasterState", () => {
  it("names a live pid, and nothing for a missing file, a dead pid or no pid", async () => {
    expect(await postmasterState(pgdata)).toBeUndefined();
    await pidFile(String(process.pid));
    expect(await postmasterState(pgdata)).toBe(process.pid);
    expect(await livePostmasterPid(pgdata)).toBe(process.pid);
    // A process that has exited: its pid names nothing (reuse within the test is unlikely).
    const gone = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
    await pidFile(gone);
    expect(await postmasterState(pgdata)).toBeUndefined();
    for (const garbage of ["", "abc", "-1234", "0"]) {
      await pidFile(garbage);
      expect(await postmasterState(pgdata), garbage).toBeUndefined();
    }
  });

  it("takes a zombie (a killed postmaster its parent has not reaped yet) for a dead process", async () => {
    // `sleep 0.1` exits under a parent that never reaps it (sh exec'd into sleep 5).
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 5"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      const pid = Number(
        await new Promise<string>((resolve) => parent.stdout.once("data", (d) => resolve(`${d}`))),
      );
      await new Promise((r) => setTimeout(r, 400));
      expect(() => process.kill(pid, 0), "the zombie is still there").not.toThrow();
      expect(processRuns(pid)).toBe(false);
      expect(processRuns(parent.pid as number)).toBe(true);
      await pidFile(String(pid));
      expect(await postmasterState(pgdata)).toBeUndefined();
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("tells a file it cannot read from a missing one", async () => {
    await mkdir(join(pgdata, "postmaster.pid")); // EISDIR on read
    expect(await postmasterState(pgdata)).toBe("unreadable");
    expect(await livePostmasterPid(pgdata)).toBeUndefined();
    expect(await postmasterState(join(pgdata, "nowhere"))).toBeUndefined();
  });
});
