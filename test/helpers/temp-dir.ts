/** A fresh temporary directory for every test of a file, removed after the test. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";

/** Registers the hooks; `use` receives each test's directory before the test runs. */
export function freshDirPerTest(prefix: string, use: (path: string) => void): void {
  let path: string | undefined;
  beforeEach(async () => {
    path = await mkdtemp(join(tmpdir(), prefix));
    use(path);
  });
  afterEach(async () => {
    if (path) await rm(path, { recursive: true, force: true });
  });
}
