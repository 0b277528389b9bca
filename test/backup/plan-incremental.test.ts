/** When `backup --type incr` is taken as an increment, and every way back to a full. */
import { describe, expect, it } from "vitest";
import {
  type IncrementalRequest,
  type ParentFacts,
  parentFactsOf,
  planBackupType,
} from "../../src/backup/plan-incremental.js";
import { makeBackupManifest } from "../helpers/builders.js";

const server = { timeline: 1, systemIdentifier: "1", versionNum: 150000 };
const fullFacts: ParentFacts = {
  id: "F",
  type: "full",
  chain: [],
  timeline: 1,
  systemIdentifier: "1",
  pgVersionNum: 150000,
  hasBlockMaps: true,
};

function plan(over: Partial<IncrementalRequest> = {}, newest: Partial<ParentFacts> | null = {}) {
  const parent = newest === null ? undefined : { ...fullFacts, ...newest };
  const ids = parent ? [...(parent.chain ?? []), parent.id] : [];
  return planBackupType({
    requested: "incr",
    maxIncr: 6,
    server,
    newest: parent,
    existing: new Set(ids),
    ...over,
  });
}

describe("planBackupType", () => {
  it("a full is a full, whatever the repository holds", () => {
    expect(plan({ requested: "full" })).toEqual({ type: "full" });
  });

  it("an increment of the newest backup, its chain growing from the full", () => {
    expect(plan()).toEqual({ type: "incr", parent: "F", chain: ["F"] });
    expect(plan({}, { id: "I2", type: "incr", chain: ["F", "I1"] })).toEqual({
      type: "incr",
      parent: "I2",
      chain: ["F", "I1", "I2"],
    });
  });

  it("falls back to a full, saying why", () => {
    const reasons = [
      plan({}, null),
      plan({}, { systemIdentifier: "2" }),
      plan({}, { pgVersionNum: 140000 }),
      plan({ server: { ...server, timeline: 2 } }),
      plan({}, { hasBlockMaps: false }),
      plan({ existing: new Set(["I1"]) }, { id: "I1", type: "incr", chain: ["F"] }),
    ].map((p) => {
      expect(p.type).toBe("full");
      return p.type === "full" ? p.reason : "";
    });
    expect(reasons).toEqual([
      "the cluster has no backup to be an increment of",
      "the newest backup F is of system 2, the server is 1",
      "the newest backup F is of PostgreSQL 140000, the server runs 150000",
      "the newest backup F is on timeline 1, the server on 2: a new timeline starts a new full",
      "the newest backup F has no block maps (taken by an older pgha)",
      "backup F of the newest backup's chain is gone",
    ]);
  });

  it("a differential is an increment of the newest full alone, however long its chain grew", () => {
    // The caller hands the newest full as `newest`; a chain of six increments follows it.
    expect(plan({ requested: "diff", maxIncr: 6, existing: new Set(["F"]) })).toEqual({
      type: "incr",
      parent: "F",
      chain: ["F"],
    });
    const reasons = [
      plan({ requested: "diff" }, null),
      plan({ requested: "diff", server: { ...server, timeline: 2 } }),
      plan({ requested: "diff", existing: new Set() }),
      plan({ requested: "diff", failedVerify: new Set(["F"]) }),
      plan({ requested: "diff", maxIncr: 0 }),
      plan({ requested: "diff", unreadable: { id: "F", why: "bad header" } }),
      // Not a full: never so from take-backup, refused all the same.
      plan({ requested: "diff" }, { id: "I1", type: "incr", chain: ["F"] }),
    ].map((p) => (p.type === "full" ? p.reason : "an increment"));
    expect(reasons).toEqual([
      "the cluster has no full backup to be an increment of",
      "the newest full F is on timeline 1, the server on 2: a new timeline starts a new full",
      "backup F of the newest full's chain is gone",
      "the last verify of the newest full, F, FAILED: an increment on it would not restore either",
      "--backup-max-incr is 0",
      "the manifest of the newest full, F, cannot be read (bad header): pgha verify names the damage",
      "I1 is not a full backup",
    ]);
  });

  it("falls back to a full when the last verify of the parent or of its chain failed", () => {
    const i2 = { id: "I2", type: "incr" as const, chain: ["F", "I1"] };
    expect(plan({ failedVerify: new Set(["I2"]) }, i2)).toEqual({
      type: "full",
      reason:
        "the last verify of the newest backup, I2, FAILED: an increment on it would not restore either",
    });
    expect(plan({ failedVerify: new Set(["F"]) }, i2)).toEqual({
      type: "full",
      reason:
        "the last verify of a backup of its chain, F, FAILED: an increment on it would not restore either",
    });
    // Another chain's failure does not matter.
    expect(plan({ failedVerify: new Set(["OLD"]) }, i2)).toMatchObject({ type: "incr" });
  });

  it("a chain has at most --backup-max-incr increments after its full", () => {
    const chainOf = (n: number) => ["F", ...Array.from({ length: n - 1 }, (_, i) => `I${i + 1}`)];
    const planAfter = (increments: number, maxIncr: number) => {
      const chain = chainOf(increments);
      const id = increments === 0 ? "F" : `I${increments}`;
      const newest = increments === 0 ? {} : { id, type: "incr" as const, chain };
      return plan({ maxIncr }, newest);
    };
    expect(planAfter(5, 6)).toMatchObject({ type: "incr", parent: "I5" });
    expect(planAfter(6, 6)).toEqual({
      type: "full",
      reason: "the chain of F has 6 increments, the most --backup-max-incr allows is 6",
    });
    expect(planAfter(1, 1)).toMatchObject({ type: "full" });
    expect(planAfter(0, 1)).toMatchObject({ type: "incr", parent: "F" });
    expect(planAfter(0, 0)).toEqual({ type: "full", reason: "--backup-max-incr is 0" });
  });

  it("reads a manifest of an older pgha as a full without block maps", () => {
    const facts = parentFactsOf(makeBackupManifest({ id: "X" }));
    expect(facts).toMatchObject({ id: "X", type: "full", chain: [], hasBlockMaps: false });
    const mapped = makeBackupManifest({
      files: [
        {
          part: "base",
          path: "global/1262",
          size: 0,
          mode: 0o600,
          mtime: "",
          sha256: "",
          blocks: { size: 8192, hashes: "", from: "" },
        },
      ],
    });
    expect(parentFactsOf(mapped).hasBlockMaps).toBe(true);
  });
});
