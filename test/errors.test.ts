/** The exit-code numbers are written once (src/errors.ts); the launcher's copies must match. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_CODE_TABLE, EXIT_CODES, restoreWriteError } from "../src/errors.js";
import { REPO_ROOT } from "./helpers/pgha.js";

describe("exit codes", () => {
  it("EXIT_CODES is the table: one distinct code per name", () => {
    expect(Object.entries(EXIT_CODES)).toEqual(EXIT_CODE_TABLE.map((r) => [r.name, r.code]));
    expect(new Set(EXIT_CODE_TABLE.map((r) => r.code)).size).toBe(EXIT_CODE_TABLE.length);
  });

  it("keeps every code but failClosed below 126 (PostgreSQL treats higher ones as fatal)", () => {
    for (const row of EXIT_CODE_TABLE) {
      if (row.name === "failClosed") expect(row.code).toBeGreaterThan(125);
      else expect(row.code).toBeLessThan(126);
    }
  });

  it("bin/pgha.mjs's fallback codes (used when the CLI cannot load) are the table's", async () => {
    const launcher = await readFile(join(REPO_ROOT, "bin/pgha.mjs"), "utf8");
    const fallback =
      /argv\[0\] === "wal-fetch" && !existsSync\("standby\.signal"\) \? (\d+) : (\d+)\)/.exec(
        launcher,
      );
    expect(fallback, "the fallback exit in bin/pgha.mjs").not.toBeNull();
    expect(Number(fallback?.[1])).toBe(EXIT_CODES.failClosed);
    expect(Number(fallback?.[2])).toBe(EXIT_CODES.internal);
  });
});

describe("restoreWriteError", () => {
  it("names the file that could not be written and, for a permission error, what to change", () => {
    const denied = Object.assign(new Error("EACCES: permission denied, open '/d/base/1/2'"), {
      code: "EACCES",
      path: "/d/base/1/2",
    });
    const error = restoreWriteError("/d", denied);
    expect(error.message).toBe("cannot restore into /d: /d/base/1/2: permission denied (EACCES)");
    expect(error.hint).toMatch(/everything under \/d must be writable by it/);
    const full = Object.assign(new Error("ENOSPC"), { code: "ENOSPC", path: "/d" });
    expect(restoreWriteError("/d", full).message).toBe(
      "cannot restore into /d: no space left on device (ENOSPC)",
    );
    expect(restoreWriteError("/d", full).hint).toMatch(/make room on the file system of \/d/);
    const other = Object.assign(new Error("EIO"), { code: "EIO", path: "/d/x" });
    expect(restoreWriteError("/d", other).hint).toBeUndefined();
  });
});
