/** The drill's --check-sql splitter: one statement per semicolon at a line end, comments dropped. */
import { describe, expect, it } from "vitest";
import { splitStatements } from "../../src/restore/drill.js";

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
