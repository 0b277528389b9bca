/**
 * A backup is only as good as its chain (FORMAT.md, "Incremental backups"): an increment
 * restores only with every backup of its chain, so what is wrong with a member's objects
 * or manifest is wrong with every backup built on it. Pure.
 */
import { dataFailed, type VerifyRecord } from "../repository/verify-record.js";
import type { Finding } from "./findings.js";

/**
 * An error in a backup's own data (its manifest or objects): what the backups built on it
 * inherit. Not its WAL: restoring an increment replays the increment's WAL only.
 */
export function damagesData(f: Finding): f is Finding & { backup: string } {
  return f.severity === "error" && f.backup !== undefined && f.kind !== "unrestorable";
}

/** The members of `chain` whose data `findings` name an error in, oldest first. */
export function failedMembers(chain: readonly string[], findings: readonly Finding[]): string[] {
  const bad = new Set(findings.filter(damagesData).map((f) => f.backup));
  return chain.filter((id) => bad.has(id));
}

/** The chain members' findings, worded as the backup built on them reports them. */
export function inheritedFindings(
  chain: readonly string[],
  findings: readonly Finding[],
): string[] {
  const members = new Set(chain);
  return findings
    .filter((f) => damagesData(f) && members.has(f.backup))
    .map((f) => `backup ${f.backup} of its chain: ${f.message}`);
}

/**
 * What `backup list` shows as a backup's last verify: its own record, failed when the last
 * record of a member of its chain failed (a member verified after it, alone); with no
 * record of its own, the failed member's, when there is one. A member fails it only by
 * its data (dataFailed), not by its own WAL.
 */
export function verifiedThroughChain(
  own: VerifyRecord | undefined,
  members: readonly { id: string; record: VerifyRecord | undefined }[],
): (VerifyRecord & { failedChain: string[] }) | undefined {
  // A member's own WAL is not this backup's: only what its data inherits.
  const failedChain = members.filter((m) => dataFailed(m.record)).map((m) => m.id);
  if (own === undefined) {
    // Never verified itself, but a member of its chain failed: it fails with it (as of
    // the newest such verify; none of its own objects were read).
    const failed = members
      .map((m) => m.record)
      .filter((r): r is VerifyRecord => dataFailed(r))
      .sort((a, b) => b.time.localeCompare(a.time))[0];
    if (failed === undefined) return undefined;
    return { ...failed, objects: 0, hashed: 0, findings: [], ok: false, failedChain };
  }
  return { ...own, ok: own.ok && failedChain.length === 0, failedChain };
}
