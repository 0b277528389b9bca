/** A fresh temporary directory for every test of a file, removed after the test. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";

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
