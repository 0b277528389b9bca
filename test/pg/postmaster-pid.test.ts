/** Which server postmaster.pid names: live, dead, garbage, missing, unreadable. */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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

  it("tells a file it cannot read from a missing one", async () => {
    await mkdir(join(pgdata, "postmaster.pid")); // EISDIR on read
    expect(await postmasterState(pgdata)).toBe("unreadable");
    expect(await livePostmasterPid(pgdata)).toBeUndefined();
    expect(await postmasterState(join(pgdata, "nowhere"))).toBeUndefined();
  });
});
