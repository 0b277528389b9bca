/**
 * The restore prefetcher: the window it keeps ahead of recovery, how it follows delivered
 * files and timeline switches, and that only verified files are ever in its spool.
 */
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IntegrityError, NotFoundError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { Prefetcher, SERVER_CHECK_MS, windowAfter } from "../../src/wal/prefetcher.js";

const MiB16 = 16 << 20;
let spool: string;

beforeEach(async () => {
  spool = join(await mkdtemp(join(tmpdir(), "pgha-prefetch-")), "prefetch");
  await mkdir(spool, { recursive: true });
});
afterEach(() => rm(join(spool, ".."), { recursive: true, force: true }));

const files = async () => (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();

async function until(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A prefetcher over a fake repository: `archived` names exist, `corrupt` ones fail to verify. */
function prefetcher(
  archived: Set<string>,
  corrupt = new Set<string>(),
  serverRunning?: () => Promise<boolean>,
) {
  const fetched: string[] = [];
  const log = memoryLogger();
  const running = new Prefetcher({
    spool,
    depth: 3,
    jobs: 2,
    segmentSize: MiB16,
    fetch: async (name, dest) => {
      fetched.push(name);
      if (corrupt.has(name)) throw new IntegrityError(`${name} is corrupt`);
      if (!archived.has(name)) throw new NotFoundError(`${name} is not archived`);
      await writeFile(dest, `wal ${name}`);
    },
    log,
    now: () => Date.now(),
    idleExitMs: undefined,
    serverRunning,
  });
  return { running, fetched, log, done: running.run() };
}

const seg = (tl: number, n: number) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;

describe("the prefetch window", () => {
  it("is the next segments on the same timeline, across a log boundary", () => {
    expect(windowAfter("0000000200000000000000FE", 3, MiB16)).toEqual([
      "0000000200000000000000FF",
      "000000020000000100000000",
      "000000020000000100000001",
    ]);
    expect(windowAfter("00000002.history", 3, MiB16)).toEqual([]);
  });
});

describe("the prefetcher", () => {
  const all = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((n) => seg(1, n)));

  it("keeps the segments after the one recovery asked for, and moves on as they are delivered", async () => {
    const p = prefetcher(all);
    await writeFile(join(spool, "want"), `${seg(1, 1)}\n`);
    await until(async () => (await files()).length === 3);
    expect(await files()).toEqual([seg(1, 2), seg(1, 3), seg(1, 4)]);
    // restore_command (bin/pgha) renames segment 2 away: the window moves to 3..5.
    await rename(join(spool, seg(1, 2)), join(spool, "..", "RECOVERYXLOG"));
    await until(async () => (await files()).includes(seg(1, 5)));
    expect(await files()).toEqual([seg(1, 3), seg(1, 4), seg(1, 5)]);
    p.running.stop();
    await p.done;
    expect(await files(), "nothing prefetched outlives the process").toEqual([]);
  });

  it("drops the old timeline's segments when recovery switches timeline", async () => {
    const withTl2 = new Set([...all, seg(2, 4), seg(2, 5), seg(2, 6), seg(2, 7)]);
    const p = prefetcher(withTl2);
    await writeFile(join(spool, "want"), `${seg(1, 2)}\n`);
    await until(async () => (await files()).length === 3);
    await writeFile(join(spool, "want"), `${seg(2, 4)}\n`);
    await until(async () => (await files()).join() === [seg(2, 5), seg(2, 6), seg(2, 7)].join());
    p.running.stop();
    await p.done;
  });

  it("stops at the end of the archive and never spools what it could not verify", async () => {
    const some = new Set([seg(1, 2), seg(1, 3)]);
    const p = prefetcher(some, new Set([seg(1, 3)]));
    await writeFile(join(spool, "want"), `${seg(1, 1)}\n`);
    await until(async () => p.fetched.includes(seg(1, 3)));
    await new Promise((r) => setTimeout(r, 300));
    expect(await files()).toEqual([seg(1, 2)]);
    expect(p.log.lines.join("\n")).toMatch(
      /prefetching 000000010000000000000003 failed: .* corrupt/,
    );
    p.running.stop();
    await p.done;
  });

  it("stops soon after its server stops, and leaves nothing in the spool", async () => {
    let running = true;
    let asked = 0;
    const p = prefetcher(all, new Set(), async () => {
      asked++;
      return running;
    });
    let finished = false;
    void p.done.then(() => {
      finished = true;
    });
    await writeFile(join(spool, "want"), `${seg(1, 1)}\n`);
    await until(async () => (await files()).length === 3);
    // It keeps going over several looks while the server runs.
    await until(async () => asked >= 3, 3 * SERVER_CHECK_MS + 2000);
    expect(finished, "it runs while its server does").toBe(false);
    expect(await files()).toHaveLength(3);
    expect(p.log.lines.join("\n")).not.toMatch(/the server stopped/);
    running = false;
    const stoppedAt = Date.now();
    await p.done;
    expect(Date.now() - stoppedAt).toBeLessThan(SERVER_CHECK_MS + 1000);
    expect(p.log.lines.join("\n")).toMatch(/the server stopped: stopping/);
    expect(await files(), "nothing prefetched outlives the process").toEqual([]);
  });
});
