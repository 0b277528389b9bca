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
