/**
 * Temporary directories of tests: a fresh one for every test of a file (removed after the
 * test), or those a file makes outside its tests (removed after the file).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach } from "vitest";

/** Registers the hooks; `path` is the running test's directory. */
export function freshDirPerTest(prefix: string): { readonly path: string } {
  let path: string | undefined;
  beforeEach(async () => {
    path = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    if (path) await rm(path, { recursive: true, force: true });
    path = undefined;
  });
  return {
    get path(): string {
      if (path === undefined) throw new Error("freshDirPerTest: used outside a test");
      return path;
    },
  };
}

/**
 * For directories a file makes outside its tests (while its suites are collected): call
 * at the file's top level, and pass each directory through the function it returns; they
 * are removed after the file.
 */
export function fileTempDirs(): (dir: string) => string {
  const made: string[] = [];
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });
  return (dir) => {
    made.push(dir);
    return dir;
  };
}
