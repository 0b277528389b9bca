/**
 * Files a killed local write leaves (.tmp-*, up to a whole object each) are removed by
 * prune once idle for an hour, on the real local store: a child process is killed with
 * SIGKILL in the middle of a put, as PostgreSQL's archive_command or a backup can be.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../src/log.js";
import { applyPrune } from "../../src/prune/apply-prune.js";
import { gatherPruneFacts, LEFTOVER_IDLE_MS, planPrune } from "../../src/prune/plan-prune.js";
import { identityKey } from "../../src/repository/keys.js";
import { FsStore } from "../../src/storage/fs.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const WAL_DIR = "v1/clusters/main/wal/0000000100000000";

/** Starts a put of `key` whose body never ends, and kills it with SIGKILL mid-write. */
async function killedPut(root: string, key: string): Promise<void> {
  const script = `
    import { FsStore } from ${JSON.stringify(new URL("../../src/storage/fs.ts", import.meta.url).pathname)};
    import { PassThrough } from "node:stream";
    const body = new PassThrough();
    body.write(Buffer.alloc(1 << 20, 7));
    setInterval(() => {}, 1000); // alive until killed: the body never ends
    await new FsStore(${JSON.stringify(root)}).put(${JSON.stringify(key)}, body);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const dir = join(root, key.slice(0, key.lastIndexOf("/")));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const names = await readdir(dir).catch(() => [] as string[]);
    const tmp = names.find((n) => n.startsWith(".tmp-"));
    if (tmp && (await stat(join(dir, tmp))).size >= 1 << 20) break;
    if (Date.now() > deadline) throw new Error("the put never started writing");
    await new Promise((r) => setTimeout(r, 20));
  }
  const exited = new Promise((r) => child.once("exit", (_code, signal) => r(signal)));
  expect(child.exitCode).toBeNull();
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
}

describe("prune removes the .tmp-* files of killed local writes", () => {
  it("deletes those idle for an hour under its cluster, and nothing else", async () => {
    const root = await mkdtemp(join(tmpdir(), "pgha-leftovers-"));
    dirs.push(root);
    const store = new FsStore(root);
    await store.put(
      identityKey("main"),
      Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
    );
    await killedPut(root, `${WAL_DIR}/000000010000000000000003`);
    const [killed] = (await readdir(join(root, WAL_DIR))).filter((n) => n.startsWith(".tmp-"));
    if (!killed) throw new Error("no leftover");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(root, WAL_DIR, killed), twoHoursAgo, twoHoursAgo);
    // A write still in progress (fresh), and an old leftover of another cluster: kept.
    await writeFile(join(root, WAL_DIR, ".tmp-0123456789ab"), Buffer.alloc(10));
    const other = join(root, "v1/clusters/other/wal");
    await mkdir(other, { recursive: true });
    await writeFile(join(other, ".tmp-ba9876543210"), Buffer.alloc(10));
    await utimes(join(other, ".tmp-ba9876543210"), twoHoursAgo, twoHoursAgo);

    const facts = await gatherPruneFacts(store, "main", memoryLogger());
    const plan = planPrune(facts, { last: 1 }, "1d", "2026-11-21T00:00:00Z");
    expect(plan.deleteLeftovers.map((l) => l.path)).toEqual([`${WAL_DIR}/${killed}`]);
    expect(plan.deleteLeftovers[0]?.size).toBeGreaterThanOrEqual(1 << 20);
    expect(plan.freedBytes).toBeGreaterThanOrEqual(1 << 20);
    expect(LEFTOVER_IDLE_MS).toBe(3_600_000);

    await applyPrune(store, plan, memoryLogger(), { check() {} });
    expect((await readdir(join(root, WAL_DIR))).sort()).toEqual([".tmp-0123456789ab"]);
    expect(await readdir(other)).toEqual([".tmp-ba9876543210"]);
    expect(await store.head(identityKey("main"))).toBeDefined();
  }, 30_000); // the killed child starts TypeScript through tsx: seconds on a busy machine

  it("deleteLeftover removes only .tmp-* files", async () => {
    const root = await mkdtemp(join(tmpdir(), "pgha-leftovers-"));
    dirs.push(root);
    const store = new FsStore(root);
    await store.put("v1/clusters/main/identity.json", Buffer.from("{}"));
    const now = new Date();
    await expect(
      store.deleteLeftover({ path: "v1/clusters/main/identity.json", size: 2, lastModified: now }),
    ).rejects.toThrow(/not a leftover/);
    await expect(
      store.deleteLeftover({ path: "../etc/.tmp-abc", size: 2, lastModified: now }),
    ).rejects.toThrow();
    expect(await store.head("v1/clusters/main/identity.json")).toBeDefined();
  });
});
