/**
 * Access to the real components integration tests need. Outside CI a missing component
 * skips its tests with a warning; under CI=true it fails the test loudly.
 */
import { inject } from "vitest";
import { postgresAvailable } from "./pg-cluster.js";
import type { S3TestServer } from "./s3-server.js";

const ci = process.env.CI === "true";

export function s3Server(): S3TestServer | null {
  const server = inject("s3");
  if (!server && ci) throw new Error(`CI requires an S3 test server: ${inject("s3Problem")}`);
  return server;
}

export function havePostgres(): boolean {
  const ok = postgresAvailable();
  if (!ok && ci) throw new Error("CI requires PostgreSQL 15 server binaries (PGHA_TEST_PG_BIN)");
  if (!ok)
    process.stderr.write("WARNING: PostgreSQL server binaries missing; skipping its tests\n");
  return ok;
}
