/** A backup is only as good as its chain: member findings and records fail what is built on them. */
import { describe, expect, it } from "vitest";
import { dataFailed, type VerifyRecord } from "../../src/repository/verify-record.js";
import {
  failedMembers,
  inheritedFindings,
  verifiedThroughChain,
} from "../../src/verify/chain-verdict.js";
import type { Finding } from "../../src/verify/findings.js";

const finding = (over: Partial<Finding>): Finding => ({
  kind: "checksum",
  severity: "error",
  object: "k",
  message: "m",
  ...over,
});
const record = (id: string, ok: boolean): VerifyRecord => ({
  format: 1,
  kind: "verify",
  id,
  time: "2026-12-02T02:00:00.000Z",
  ok,
  objects: 3,
  hashed: 3,
  findings: [],
});

describe("chain verdicts", () => {
  it("a member's damaged data fails the chain; its WAL, warnings and other backups do not", () => {
    const findings = [
      finding({ backup: "A", message: "A's bundle is corrupt" }),
      finding({ kind: "unrestorable", backup: "B" }),
      finding({ kind: "missing", backup: "B", severity: "warning" }),
      finding({ kind: "manifest", backup: "X" }),
      finding({ kind: "wal-gap", object: "0000000100000000000000AA" }),
    ];
    expect(failedMembers(["A", "B"], findings)).toEqual(["A"]);
    expect(failedMembers(["B"], findings)).toEqual([]);
    expect(failedMembers(["X", "A"], findings)).toEqual(["X", "A"]);
    expect(inheritedFindings(["A", "B"], findings)).toEqual([
      "backup A of its chain: A's bundle is corrupt",
    ]);
  });

  it("backup list's verified: a chain member's failed record fails its own ok one", () => {
    // Never verified itself: "never", unless a member failed, which it fails with.
    expect(verifiedThroughChain(undefined, [{ id: "A", record: record("A", true) }])).toBe(
      undefined,
    );
    expect(
      verifiedThroughChain(undefined, [{ id: "A", record: record("A", false) }]),
    ).toMatchObject({ ok: false, failedChain: ["A"], objects: 0, hashed: 0 });
    expect(
      verifiedThroughChain(record("C", true), [
        { id: "A", record: record("A", false) },
        { id: "B", record: undefined },
      ]),
    ).toMatchObject({ id: "C", ok: false, failedChain: ["A"] });
    expect(
      verifiedThroughChain(record("C", true), [{ id: "A", record: record("A", true) }]),
    ).toMatchObject({ ok: true, failedChain: [] });
  });

  it("a member whose own WAL failed, its data sound, fails nothing built on it; an older record without dataOk does", () => {
    const walOnly = { ...record("A", false), restorable: false, dataOk: true };
    expect(verifiedThroughChain(undefined, [{ id: "A", record: walOnly }])).toBe(undefined);
    expect(verifiedThroughChain(record("C", true), [{ id: "A", record: walOnly }])).toMatchObject({
      ok: true,
      failedChain: [],
    });
    expect(dataFailed(walOnly)).toBe(false);
    expect(dataFailed({ ...record("A", true), dataOk: false })).toBe(true);
    expect(dataFailed(record("A", false))).toBe(true); // written before dataOk
    expect(dataFailed(undefined)).toBe(false);
  });
});
