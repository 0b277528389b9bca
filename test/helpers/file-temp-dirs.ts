/**
 * Temporary directories of one test file, removed after it: call at the top level of the
 * file (it registers an afterAll there), and pass each directory made through the
 * function it returns.
 */
import { rm } from "node:fs/promises";
import { afterAll } from "vitest";

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
