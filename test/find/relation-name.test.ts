/** The table names restore find takes, and its one-kind / --since-before---until checks. */
import { describe, expect, it } from "vitest";
import { commandsFor, findRequestFrom } from "../../src/cli/commands/find.js";
import type { OptionsOf } from "../../src/config/flags.js";
import { UsageError } from "../../src/errors.js";
import { describeQuery, parseRelationName } from "../../src/find/relation-name.js";

describe("parseRelationName", () => {
  it("folds unquoted names and keeps quoted ones", () => {
    expect(parseRelationName("Orders", "--dropped")).toEqual({ schema: undefined, name: "orders" });
    expect(parseRelationName("App.Orders", "--dropped")).toEqual({ schema: "app", name: "orders" });
    expect(parseRelationName('"Sales"."Big ""Q"""', "--dropped")).toEqual({
      schema: "Sales",
      name: 'Big "Q"',
    });
    expect(describeQuery({ schema: "app", name: "orders" })).toBe("app.orders");
  });

  it("refuses what is not [schema.]name, with a hint", () => {
    for (const bad of ["", "a.b.c", "1abc", "orders;", '"open', "a..b", "x".repeat(64)]) {
      let error: unknown;
      try {
        parseRelationName(bad, "--dropped");
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).toContain(`--dropped '${bad}' is not a table name`);
      expect((error as UsageError).hint).toMatch(/schema\.name/);
    }
  });
});

const opts = (over: Partial<OptionsOf<"restore find">>): OptionsOf<"restore find"> =>
  ({ minRows: 1000, json: false, settings: {}, ...over }) as OptionsOf<"restore find">;

describe("findRequestFrom", () => {
  it("takes exactly one of --dropped, --truncated, --deleted-from", () => {
    expect(findRequestFrom(opts({ deletedFrom: "t", minRows: 5 }))).toMatchObject({
      kind: "delete",
      query: { name: "t" },
      minRows: 5,
    });
    expect(() => findRequestFrom(opts({}))).toThrow(/say what to find/);
    expect(() => findRequestFrom(opts({ dropped: "a", truncated: "b" }))).toThrow(/give one of/);
  });

  it("refuses --since after --until", () => {
    expect(() => findRequestFrom(opts({ dropped: "t", since: 2000, until: 1000 }))).toThrow(
      /--since is after --until/,
    );
    expect(findRequestFrom(opts({ dropped: "t", since: 1000, until: 2000 }))).toMatchObject({
      since: 1000,
      until: 2000,
    });
  });

  it("prints commands that stop just before the commit, from the backup before it", () => {
    const finding = {
      kind: "drop" as const,
      xid: 745,
      lsn: "0/3000120",
      time: "2026-12-01T20:00:00Z",
      database: "postgres",
      relation: "public.t",
      oid: 16384,
      backup: "20261201T195900Z",
    };
    expect(commandsFor(finding, " --cluster main")).toEqual({
      restore:
        "pgha restore --cluster main --pgdata <new data directory> --backup 20261201T195900Z --target-xid 745 --target-exclusive --target-action promote",
      drill:
        "pgha drill --cluster main --backup 20261201T195900Z --target-xid 745 --target-exclusive",
    });
  });
});
