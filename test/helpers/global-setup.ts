/**
 * Vitest global setup: one S3 test server for the whole run, handed to tests with
 * inject("s3"). Under CI=true a missing component fails the run loudly.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO_ROOT } from "./pgha.js";
import { type S3TestServer, startS3Server } from "./s3-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    s3: S3TestServer | null;
    s3Problem: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Integration tests run bin/pgha, which runs the compiled dist/: build it fresh.
  execFileSync(
    process.execPath,
    [join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: REPO_ROOT,
      stdio: "inherit",
    },
  );
  try {
    const running = await startS3Server((line) => process.stderr.write(`[s3] ${line}\n`));
    process.stderr.write(`[s3] ${running.server.kind} at ${running.server.endpoint}\n`);
    project.provide("s3", running.server);
    project.provide("s3Problem", null);
    return running.stop;
  } catch (error) {
    const problem = `no S3 test server: ${(error as Error).message}`;
    if (process.env.CI === "true") throw new Error(problem);
    process.stderr.write(`[s3] WARNING ${problem}; S3 tests will be skipped\n`);
    project.provide("s3", null);
    project.provide("s3Problem", problem);
    return async () => undefined;
  }
}
