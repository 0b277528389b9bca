/**
 * Timeline history files (<TLI>.history): one line per ancestor timeline,
 * "parentTLI<TAB>switchpoint<TAB>reason", oldest first. Timeline N's file lists the whole
 * ancestry of N, so it alone gives the path a recovery to timeline N follows.
 */
import { parseLsn } from "./names.js";

export interface TimelineStep {
  timeline: number;
  /** Where WAL of this timeline starts being used (0 for the first). */
  begin: bigint;
  /** Where the next timeline branched off (exclusive), or null for the last step. */
  end: bigint | null;
}

/** Parses a history file; returns the ancestry of `timeline` ending with itself. */
export function timelinePath(timeline: number, history: string | undefined): TimelineStep[] {
  if (timeline === 1 || history === undefined) return [{ timeline, begin: 0n, end: null }];
  const steps: TimelineStep[] = [];
  let begin = 0n;
  for (const line of history.split("\n")) {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) continue;
    const [tli, lsn] = text.split(/\s+/);
    const end = parseLsn(lsn ?? "");
    if (!tli || end === undefined || !/^\d+$/.test(tli)) continue;
    steps.push({ timeline: Number(tli), begin, end });
    begin = end;
  }
  steps.push({ timeline, begin, end: null });
  return steps;
}

export interface HistoryEntry {
  /** An ancestor timeline. */
  parent: number;
  /** Where the next timeline branched off it. */
  switchpoint: bigint;
}

export type ParsedHistory = { ok: true; entries: HistoryEntry[] } | { ok: false; reason: string };

/**
 * Checks a history file as PostgreSQL reads it (readTimeLineHistory), and a little more:
 * every line that is not blank or a `#` comment is "parentTLI<whitespace>LSN[<whitespace>
 * reason]"; parent timelines rise line by line and are all lower than the file's own;
 * switch points parse as LSNs and never go back; a file of timeline N > 1 names at least
 * its parent. PostgreSQL stops recovery on a file it cannot read, so a file that fails
 * here is never archived, and one already in a repository is not followed.
 */
export function parseHistory(timeline: number, text: string): ParsedHistory {
  const entries: HistoryEntry[] = [];
  let number = 0;
  for (const line of text.split("\n")) {
    number++;
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const [tli, lsn] = trimmed.split(/\s+/);
    const where = `line ${number}`;
    if (!tli || !/^\d{1,10}$/.test(tli)) {
      return { ok: false, reason: `${where} does not start with a timeline number` };
    }
    const parent = Number(tli);
    const switchpoint = parseLsn(lsn ?? "");
    if (switchpoint === undefined) {
      return { ok: false, reason: `${where}: '${lsn ?? ""}' is not a switch point (an LSN)` };
    }
    const previous = entries.at(-1);
    if (parent < 1 || parent >= timeline) {
      return {
        ok: false,
        reason: `${where}: parent timeline ${parent} is not lower than the file's own ${timeline}`,
      };
    }
    if (previous && parent <= previous.parent) {
      return {
        ok: false,
        reason: `${where}: timeline ${parent} does not follow ${previous.parent}`,
      };
    }
    if (previous && switchpoint < previous.switchpoint) {
      return { ok: false, reason: `${where}: switch point ${lsn} is before the previous one` };
    }
    entries.push({ parent, switchpoint });
  }
  if (timeline > 1 && entries.length === 0) {
    return { ok: false, reason: "it names no parent timeline" };
  }
  return { ok: true, entries };
}
