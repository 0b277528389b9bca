/** The drill's --check-sql splitter: one statement per semicolon at a line end, comments dropped. */
import { describe, expect, it } from "vitest";
import { IntegrityError, StorageError } from "../../src/errors.js";
import { refusalError } from "../../src/restore/apply.js";
import { drillFailureKind, splitStatements } from "../../src/restore/drill.js";

describe("splitStatements", () => {
  it("splits at a semicolon that ends a line, keeping multi-line statements whole", () => {
    const sql = [
      "-- the orders must be back",
      "SELECT count(*) > 1000",
      "  FROM orders;",
      "SELECT true;   ",
      "",
      "SELECT 'a;b' AS x;",
      "SELECT 1",
    ].join("\n");
    expect(splitStatements(sql)).toEqual([
      "SELECT count(*) > 1000\n  FROM orders",
      "SELECT true",
      "SELECT 'a;b' AS x",
      "SELECT 1",
    ]);
  });

  it("gives nothing for an empty file or one of comments", () => {
    expect(splitStatements("")).toEqual([]);
    expect(splitStatements("-- nothing\n  -- at all\n")).toEqual([]);
    expect(splitStatements(";\n;\n")).toEqual([]);
  });
});

describe("drillFailureKind", () => {
  it("keeps the kind of a pgha error, whatever its message says", () => {
    // Before, the exit code came from the message's text: only "cannot restore:" was not 12.
    const storage = new StorageError("cannot restore: GET failed with 503 after retries", {
      transient: true,
    });
    expect(drillFailureKind(storage)).toBe("storage");
    expect(drillFailureKind(new IntegrityError("s3://b/x is corrupt"))).toBe("integrity");
    expect(drillFailureKind(refusalError({ reasons: ["no backups"], gaps: [] }))).toBe(
      "unrestorable",
    );
  });

  it("calls anything else the drill's own failure", () => {
    expect(drillFailureKind(new Error("still in recovery after 600s"))).toBe("drillFailed");
  });
});
