/**
 * restore find's pg_waldump: looked for as the client programs are (--pg-bin, else the
 * backup's major's Debian directory, else PATH), and one of another major is refused up
 * front with what to do, not run until it fails as if the archive were damaged.
 */
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PostgresError, UsageError } from "../../src/errors.js";
import { findPgWaldump } from "../../src/pg/client-tools.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

const temp = freshDirPerTest("pgha-waldump-");

async function fakeWaldump(version: string): Promise<string> {
  const file = join(temp.path, "pg_waldump");
  await writeFile(file, `#!/bin/sh\necho 'pg_waldump (PostgreSQL) ${version}'\n`);
  await chmod(file, 0o755);
  return temp.path;
}

describe("findPgWaldump", () => {
  it("takes the one in --pg-bin of the WAL's major", async () => {
    const dir = await fakeWaldump("15.18 (Debian 15.18-0+deb12u1)");
    expect(await findPgWaldump(dir, 150018)).toBe(join(dir, "pg_waldump"));
  });

  it("refuses one of another major, with a hint that says which one to use", async () => {
    const dir = await fakeWaldump("16.4");
    const error = await findPgWaldump(dir, 150018).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(
      /pg_waldump is of PostgreSQL 16, and the archived WAL of PostgreSQL 15/,
    );
    expect((error as UsageError).hint).toMatch(/PostgreSQL 15 server programs.*--pg-bin/);
    expect((error as UsageError).hint).not.toMatch(/verify/);
  });

  it("one that cannot be run is a postgres error that points at --pg-bin", async () => {
    const error = await findPgWaldump(join(temp.path, "none"), 150018).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresError);
    expect((error as PostgresError).message).toMatch(/cannot run .*pg_waldump: ENOENT/);
    expect((error as PostgresError).hint).toMatch(/--pg-bin/);
  });
});
