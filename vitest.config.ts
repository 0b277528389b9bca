import { defineConfig } from "vitest/config";

/**
 * Two projects, both run by `npm test`:
 * - unit: pure logic and the local file system; no build, no servers, no global setup
 *   (`npm run test:unit`, a few seconds);
 * - integration: test/integration/, against the built CLI (bin/pgha runs dist/), real
 *   PostgreSQL 15 clusters and one S3 server for the run (global setup).
 */
const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**"],
          // Threads start faster than forks; the tests share no module state, so one
          // module graph per worker (isolate: false) halves the run.
          pool: "threads",
          isolate: false,
          maxWorkers: 2,
          env,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/helpers/global-setup.ts"],
          setupFiles: ["test/helpers/temp-cleanup.ts"],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          pool: "forks",
          // Two cores: integration files each start a PostgreSQL server.
          maxWorkers: 2,
          env,
        },
      },
    ],
  },
});
