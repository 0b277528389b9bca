/** gatherServerFacts without a server: a note, not a failure; the spool's status.json is read. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gatherServerFacts } from "../../src/status/gather-status.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

describe("gatherServerFacts", () => {
  const tmp = freshDirPerTest("pgha-server-facts-");

  it("notes an unreachable server and still reads the asynchronous archiver's status", async () => {
    const spool = join(tmp.path, "pg_wal", ".pgha", "archive");
    await mkdir(spool, { recursive: true });
    const status = {
      pid: 1,
      startedAt: "2026-12-01T10:00:00.000Z",
      updatedAt: "2026-12-01T10:05:00.000Z",
      backlog: { files: 3, bytes: 3 * 16 * 2 ** 20, oldest: "000000010000000000000007" },
      backlogWarnBytes: 1,
      overLimit: true,
      stored: 12,
      lastStored: { name: "000000010000000000000006", at: "2026-12-01T10:04:00.000Z" },
      lastError: null,
      running: true,
    };
    await writeFile(join(spool, "status.json"), JSON.stringify(status));
    // Port 1 on loopback: refused at once.
    const facts = await gatherServerFacts("postgresql://pgha@127.0.0.1:1/postgres", tmp.path, 2000);
    expect(facts.reachable).toBe(false);
    expect(facts.archiver).toBeUndefined();
    expect(facts.ready).toBeUndefined();
    expect(facts.notes).toEqual([
      expect.stringMatching(/^the server is not reachable: .*ECONNREFUSED/),
    ]);
    expect(facts.spool).toEqual({
      running: true,
      updatedAt: status.updatedAt,
      backlog: status.backlog,
      overLimit: true,
      stored: 12,
      lastStored: status.lastStored,
      lastError: null,
    });
  });

  it("has no spool status where no asynchronous archiver ever ran", async () => {
    const facts = await gatherServerFacts("postgresql://pgha@127.0.0.1:1/postgres", tmp.path, 2000);
    expect(facts.spool).toBeUndefined();
    expect(facts.notes).toHaveLength(1);
  });
});
