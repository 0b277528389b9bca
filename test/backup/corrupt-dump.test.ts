/**
 * A dump set whose object is corrupt (it does not decompress): restoring the globals and
 * fetching the files fail as corrupt objects, exit 6, naming the object (issue 12, point 5).
 */
import { readdir } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { fetchDumpSet, restoreGlobals } from "../../src/backup/dump-restore.js";
import { EXIT_CODES, exitCodeOf } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import type { ClientTools } from "../../src/pg/client-tools.js";
import type { PgServer } from "../../src/pg/server.js";
import type { DumpManifest } from "../../src/repository/dump-manifest.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-dump-");

const GLOBALS_KEY = "v1/clusters/main/dumps/20261121T000000Z/globals.sql";

/** A dump set whose globals object holds bytes that are not a zstd frame. */
async function corruptDumpSet(): Promise<{ store: MemoryStore; manifest: DumpManifest }> {
  const store = new MemoryStore();
  const garbage = Buffer.from("this is not zstd at all, just some bytes ".repeat(20));
  await store.put(GLOBALS_KEY, garbage);
  const manifest: DumpManifest = {
    format: 1,
    kind: "dump-set",
    id: "20261121T000000Z",
    cluster: "main",
    label: null,
    pinned: false,
    startTime: "",
    stopTime: "",
    pgVersion: "15",
    pgVersionNum: 150000,
    systemIdentifier: "1",
    pgDumpVersion: "15",
    noRolePasswords: true,
    globals: {
      key: GLOBALS_KEY,
      compression: "zstd",
      rawSize: 100,
      sha256: "0".repeat(64),
      storedSize: garbage.length,
    },
    databases: [],
  };
  return { store, manifest };
}

describe("a corrupt dump object", () => {
  it("fails dump fetch as corrupt (exit 6), naming the object, and leaves no file", async () => {
    const { store, manifest } = await corruptDumpSet();
    const error = await fetchDumpSet(store, manifest, temp.path).catch((e: unknown) => e);
    expect(exitCodeOf(error)).toBe(EXIT_CODES.integrity);
    expect((error as Error).message).toMatch(`${GLOBALS_KEY} is corrupt`);
    expect(await readdir(temp.path)).toEqual([]);
  });

  it("fails dump fetch as corrupt (exit 6, not 1) when an object the manifest lists is missing", async () => {
    const { store, manifest } = await corruptDumpSet();
    await store.delete(GLOBALS_KEY);
    const error = await fetchDumpSet(store, manifest, temp.path).catch((e: unknown) => e);
    expect(exitCodeOf(error)).toBe(EXIT_CODES.integrity);
    expect((error as Error).message).toMatch(`${GLOBALS_KEY} is missing`);
  });

  it("fails dump restore --globals as corrupt (exit 6) before psql runs", async () => {
    const { store, manifest } = await corruptDumpSet();
    const tools = {
      path: () => {
        throw new Error("psql must not run");
      },
    } as unknown as ClientTools;
    const deps = {
      store,
      server: {} as PgServer,
      tools,
      env: {},
      log: memoryLogger(),
    };
    const error = await restoreGlobals(deps, manifest).catch((e: unknown) => e);
    expect(exitCodeOf(error)).toBe(EXIT_CODES.integrity);
    expect((error as Error).message).toMatch(`${GLOBALS_KEY} is corrupt`);
  });
});
