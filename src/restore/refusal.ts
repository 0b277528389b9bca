/** The planners' result: a value, or the reasons a restore cannot succeed. */
import type { ArchiveEnd } from "./archive-end.js";

/** Why a plan cannot be followed; gaps lists missing WAL segments when they are the reason. */
export interface PlanRefusal {
  reasons: string[];
  gaps: string[];
  /** Where the archive ends on the path, when the target lies past it. */
  archiveEnd?: ArchiveEnd;
  /** The backup the request named is not in the repository: "not found", not unreachable. */
  missingBackup?: string;
}

export type Chosen<T> = { ok: true; value: T } | { ok: false; refusal: PlanRefusal };

export function refuse(reason: string, gaps: string[] = []): { ok: false; refusal: PlanRefusal } {
  return { ok: false, refusal: { reasons: [reason], gaps } };
}
