/**
 * The asynchronous archiver and wal-push's side of it, on the memory store with real files:
 * nothing is acknowledged (ok marker) before it is stored and verified, failures reach the
 * waiting wal-push with their exit code, PostgreSQL's files are never touched.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { PghaError, StorageError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { walKey } from "../../src/repository/keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { Archiver, archiveOrder } from "../../src/wal/archiver.js";
import { pushThroughArchiver } from "../../src/wal/async-push.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { prepareWalFile, storeWalFile } from "../../src/wal/push.js";
import { adoptSpool, spoolDir, storeIdentity } from "../../src/wal/spool.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

let pgdata: string;
let spool: string;

beforeEach(async () => {
  pgdata = await mkdtemp(join(tmpdir(), "pgha-archiver-"));
  await mkdir(join(pgdata, "pg_wal", "archive_status"), { recursive: true });
  spool = spoolDir(pgdata, "archive");
});
afterEach(() => rm(pgdata, { recursive: true, force: true }));

const compression = { algorithm: "zstd", level: 1 } as const;

/** A segment PostgreSQL has marked ready to archive. */
async function ready(seg: number): Promise<string> {
  const name = segmentName(1, 0, seg);
  await writeFile(join(pgdata, "pg_wal", name), makeSegment(1, 0, seg));
  await writeFile(join(pgdata, "pg_wal", "archive_status", `${name}.ready`), "");
  return name;
}

function archiver(store: ObjectStore, over: { idleExitMs?: number; jobs?: number } = {}) {
  const log = memoryLogger();
  const deps = { store, cluster: "main", compression, log, now: () => new Date() };
  return new Archiver({
    pgdata,
    spool,
    prepare: (path) => prepareWalFile(path, compression),
    store: (prepared) => storeWalFile(deps, prepared),
    jobs: over.jobs ?? 2,
    log,
    now: () => Date.now(),
    idleExitMs: over.idleExitMs ?? 300,
    backlogWarnBytes: 1 << 30,
  });
}

const okMarkers = () => readdir(join(spool, "ok")).catch(() => [] as string[]);

describe("the archiver", () => {
  it("stores every .ready file, and acknowledges each only once the repository holds it", async () => {
    const names = await Promise.all([1, 2, 3, 4, 5].map(ready));
    const store = new MemoryStore();
    await archiver(store).run();
    expect((await okMarkers()).sort()).toEqual(names);
    for (const name of names) {
      const file = parseWalFileName(name);
      if (!file) throw new Error(name);
      expect(await store.head(walKey("main", file)), name).toBeDefined();
    }
    // PostgreSQL's status files are its own.
    expect((await readdir(join(pgdata, "pg_wal", "archive_status"))).sort()).toEqual(
      names.map((n) => `${n}.ready`),
    );
    const status = JSON.parse(await readFile(join(spool, "status.json"), "utf8"));
    expect(status).toMatchObject({ stored: 5, backlog: { files: 0 }, running: false });
  });

  it("writes no ok marker for a file it could not store, and records the failure instead", async () => {
    const good = await ready(1);
    const bad = await ready(2);
    const store = new MemoryStore();
    const failing: ObjectStore = Object.create(store, {
      put: {
        value: (key: string, ...rest: Parameters<ObjectStore["put"]>[1][]) => {
          if (key.endsWith(bad))
            throw new StorageError("injected: bucket unreachable", { transient: false });
          return store.put(key, ...(rest as [Parameters<ObjectStore["put"]>[1]]));
        },
      },
    });
    const running = archiver(failing);
    const done = running.run();
    await until(async () => (await readdir(join(spool, "error")).catch(() => [])).length > 0);
    running.stop();
    await done;
    expect(await okMarkers()).toEqual([good]);
    const failure = JSON.parse(await readFile(join(spool, "error", bad), "utf8"));
    expect(failure).toMatchObject({ exit: "storage", message: "injected: bucket unreachable" });
  });

  it("drops its markers once PostgreSQL marked the files done", async () => {
    const name = await ready(1);
    await archiver(new MemoryStore()).run();
    expect(await okMarkers()).toEqual([name]);
    await rm(join(pgdata, "pg_wal", "archive_status", `${name}.ready`));
    await writeFile(join(pgdata, "pg_wal", "archive_status", `${name}.done`), "");
    await archiver(new MemoryStore()).run();
    expect(await okMarkers()).toEqual([]);
  });

  it("archives history files first, then in WAL order", () => {
    const names = ["000000020000000000000003", "00000002.history", "000000010000000000000004"];
    expect([...names].sort(archiveOrder)).toEqual([
      "00000002.history",
      "000000010000000000000004",
      "000000020000000000000003",
    ]);
  });
});

describe("wal-push through the archiver", () => {
  const config = resolveConfig({
    flags: { repo: "/unused", archiveTimeout: "500ms" },
    env: {},
    file: undefined,
  });

  const started: Archiver[] = [];
  afterEach(() => {
    for (const running of started.splice(0)) running.stop();
  });

  /** An "archiver start" that runs an in-process archiver over the memory store. */
  function deps(store: ObjectStore, runs: Promise<void>[]) {
    return {
      pgdata,
      config,
      callId: "pgha-1|wal-push|env",
      log: memoryLogger(),
      startArchiver: () => {
        const running = archiver(store, { idleExitMs: 200 });
        started.push(running);
        runs.push(adoptSpool(spool, "vitest", config, undefined).then(() => running.run()));
        return true;
      },
      now: () => Date.now(),
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    };
  }

  it("exits once the archiver stored the file, and at once when it already had", async () => {
    const name = await ready(7);
    const runs: Promise<void>[] = [];
    const store = new MemoryStore();
    const path = join(pgdata, "pg_wal", name);
    expect(await pushThroughArchiver(deps(store, runs), path)).toBe("archived");
    expect(runs).toHaveLength(1);
    expect(await readFile(join(spool, "id"), "utf8")).toBe("pgha-1|wal-push|env\n");
    expect(await pushThroughArchiver(deps(store, runs), path)).toBe("archived");
    expect(runs).toHaveLength(1); // the marker answered: no second archiver
    await Promise.all(runs);
  });

  it("reports the archiver's failure for its file with that failure's exit code", async () => {
    const runs: Promise<void>[] = [];
    const store = new MemoryStore();
    // The first segment records the cluster's identity; one of another system follows.
    const first = join(pgdata, "pg_wal", await ready(8));
    expect(await pushThroughArchiver(deps(store, runs), first)).toBe("archived");
    const other = await segmentAt(9, makeSegment(1, 0, 9, { systemIdentifier: 42n }));
    // Time enough on a loaded machine for the failure to arrive before the timeout does.
    const patient = { ...deps(store, runs), config: { ...config, archiveTimeoutMs: 10_000 } };
    const error = await pushThroughArchiver(patient, join(pgdata, "pg_wal", other)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PghaError);
    expect((error as PghaError).exit).toBe("clusterMismatch");
    expect((error as Error).message).toMatch(/archiving .* failed: segment is from system 42/);
    expect(await okMarkers()).toEqual([segmentName(1, 0, 8)]);
    for (const running of started) running.stop();
    await Promise.all(runs);
  });

  it("times out with a storage error (PostgreSQL retries) when nothing stores the file", async () => {
    const name = await ready(3);
    const error = await pushThroughArchiver(
      { ...deps(new MemoryStore(), []), startArchiver: () => true },
      join(pgdata, "pg_wal", name),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/was not stored by the archiver within 1s/);
  });

  it("answers only for a .ready pg_wal file of its data directory, to the spool's owner", async () => {
    const name = await ready(5);
    const path = join(pgdata, "pg_wal", name);
    const never = { ...deps(new MemoryStore(), []), startArchiver: () => expect.unreachable() };
    // Another file of the same name (a copy elsewhere): a marker for pg_wal's says nothing of it.
    const elsewhere = join(pgdata, name);
    await writeFile(elsewhere, makeSegment(1, 0, 5));
    expect(await pushThroughArchiver(never, elsewhere)).toEqual({
      bypass: `${elsewhere} is not ${path}`,
    });
    // Another user (root, by hand) would leave files the server user cannot read.
    expect(await pushThroughArchiver({ ...never, uid: 4242 }, path)).toEqual({
      bypass: expect.stringMatching(/pg_wal belongs to uid \d+, not to this process's uid 4242/),
    });
    // Already .done: no archiver would ever store it.
    await rm(join(pgdata, "pg_wal", "archive_status", `${name}.ready`));
    expect(await pushThroughArchiver(never, path)).toEqual({
      bypass: `PostgreSQL has not marked ${name} .ready in ${pgdata}`,
    });
    expect(await readdir(join(pgdata, "pg_wal"))).not.toContain(".pgha");
  });

  it("exits 0 for a stored file even when the id line cannot be read (it only costs the fast path)", async () => {
    const name = await ready(6);
    const runs: Promise<void>[] = [];
    await mkdir(join(spool, "id"), { recursive: true }); // unreadable as a file (EISDIR)
    await writeFile(join(spool, "config"), storeIdentity(config));
    const path = join(pgdata, "pg_wal", name);
    expect(await pushThroughArchiver(deps(new MemoryStore(), runs), path)).toBe("archived");
    await Promise.all(runs);
  });

  it("covers a file whose time is ahead of the clock (a step back), and re-archives one changed after its marker", async () => {
    const runs: Promise<void>[] = [];
    const store = new MemoryStore();
    // Written before the clock stepped back an hour: its time is ahead of every marker's.
    const ahead = await ready(10);
    const future = new Date(Date.now() + 3_600_000);
    await utimes(join(pgdata, "pg_wal", ahead), future, future);
    expect(await pushThroughArchiver(deps(store, runs), join(pgdata, "pg_wal", ahead))).toBe(
      "archived",
    );
    // A marker older than its file (left by an older version, or a file touched after it was
    // stored) is dropped and the file archived again, not waited for until the timeout, forever.
    const touched = await ready(11);
    await mkdir(join(spool, "ok"), { recursive: true });
    await writeFile(join(spool, "ok", touched), "{}");
    const past = new Date(Date.now() - 60_000);
    await utimes(join(spool, "ok", touched), past, past);
    expect(await pushThroughArchiver(deps(store, runs), join(pgdata, "pg_wal", touched))).toBe(
      "archived",
    );
    for (const running of started) running.stop();
    await Promise.all(runs);
  });

  it("says so when no archiver can be started (the caller then stores the file itself)", async () => {
    const name = await ready(4);
    const result = await pushThroughArchiver(
      { ...deps(new MemoryStore(), []), startArchiver: () => false },
      join(pgdata, "pg_wal", name),
    );
    expect(result).toBe("no-archiver");
  });
});

async function segmentAt(seg: number, bytes: Buffer): Promise<string> {
  const name = segmentName(1, 0, seg);
  await writeFile(join(pgdata, "pg_wal", name), bytes);
  await writeFile(join(pgdata, "pg_wal", "archive_status", `${name}.ready`), "");
  return name;
}

async function until(check: () => Promise<boolean>, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
