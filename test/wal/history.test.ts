/** Timeline history files: what parses, and wal-push refusing one that does not (issue 12, point 3). */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exitCodeOf, RefusedError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseHistory } from "../../src/wal/history.js";
import { pushWalFile } from "../../src/wal/push.js";

describe("parseHistory", () => {
  it("reads what PostgreSQL writes: parent, switch point, reason; comments and blank lines", () => {
    const text =
      '1\t0/3000000\tno recovery target specified\n\n# a comment\n2\t0/5000098\tat restore point "x"\n';
    expect(parseHistory(3, text)).toEqual({
      ok: true,
      entries: [
        { parent: 1, switchpoint: 0x3000000n },
        { parent: 2, switchpoint: 0x5000098n },
      ],
    });
    // The reason is optional, as for PostgreSQL.
    expect(parseHistory(2, "1\t0/3000000\n").ok).toBe(true);
  });

  it.each([
    ["garbage", "this is not a history file\n", /line 1 does not start with a timeline number/],
    ["no switch point", "1\n", /'' is not a switch point/],
    [
      "a switch point that is not an LSN",
      "1\tnowhere\treason\n",
      /'nowhere' is not a switch point/,
    ],
    [
      "a parent not lower than the file's own",
      "3\t0/3000000\tx\n",
      /parent timeline 3 is not lower than the file's own 3/,
    ],
    ["a parent of 0", "0\t0/3000000\tx\n", /parent timeline 0/],
    ["parents out of order", "2\t0/3000000\tx\n1\t0/4000000\tx\n", /timeline 1 does not follow 2/],
    ["switch points going back", "1\t0/5000000\tx\n2\t0/4000000\tx\n", /before the previous one/],
    ["no line at all", "# only a comment\n", /names no parent timeline/],
  ])("refuses %s", (_what, text, reason) => {
    const parsed = parseHistory(3, text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe("wal-push of a history file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-history-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const deps = (store: MemoryStore) => ({
    store,
    cluster: "main",
    compression: { algorithm: "zstd", level: 1 } as const,
    log: memoryLogger(),
    now: () => new Date("2026-11-21T12:00:00Z"),
  });

  it("refuses garbage with exit 3 and stores nothing", async () => {
    const store = new MemoryStore();
    const path = join(dir, "00000002.history");
    await writeFile(path, "garbage\n");
    const pushed = pushWalFile(deps(store), path);
    await expect(pushed).rejects.toBeInstanceOf(RefusedError);
    await expect(pushed).rejects.toThrow(/00000002.history is not a valid timeline history file/);
    expect(exitCodeOf(await pushed.catch((e: unknown) => e))).toBe(3);
    const keys: string[] = [];
    for await (const entry of store.list("")) keys.push(entry.key);
    expect(keys).toEqual([]);
  });

  it("refuses a history file whose parent is not lower than its own timeline", async () => {
    const path = join(dir, "00000002.history");
    await writeFile(path, "1\t0/3000000\tx\n3\t0/4000000\tx\n");
    await expect(pushWalFile(deps(new MemoryStore()), path)).rejects.toThrow(
      /parent timeline 3 is not lower than the file's own 2/,
    );
  });

  it("stores a valid one", async () => {
    const path = join(dir, "00000003.history");
    await writeFile(path, "1\t0/3000000\tno recovery target specified\n2\t0/5000000\tx\n");
    expect((await pushWalFile(deps(new MemoryStore()), path)).status).toBe("stored");
  });
});
