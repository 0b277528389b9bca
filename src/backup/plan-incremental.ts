/**
 * Whether a backup asked for as incremental (or differential) is taken as one, and on
 * which parent: a pure planner over the repository's newest backup (for a differential,
 * its newest full) and the server (FORMAT.md, "Incremental backups"). A differential is
 * an increment of a full alone: its chain is that full, whatever increments came after
 * it. Every way back to a full says why, in one line the backup logs.
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import { MAX_CHAIN_BACKUPS } from "./block-map.js";

export type BackupType = "full" | "incr" | "diff";

/** The most increments a chain may have after its full (`from` is one byte a block). */
export const MAX_INCR_LIMIT = MAX_CHAIN_BACKUPS - 1;

/** What the planner reads of the newest backup. */
export type ParentFacts = Pick<
  BackupManifest,
  "id" | "type" | "chain" | "timeline" | "systemIdentifier" | "pgVersionNum"
> & {
  /** Whether its manifest has block maps (pgha before incremental backups wrote none). */
  hasBlockMaps: boolean;
};

export interface IncrementalRequest {
  requested: BackupType;
  /** --backup-max-incr: increments after a full before the next backup is a full. */
  maxIncr: number;
  server: { timeline: number; systemIdentifier: string; versionNum: number };
  /** The parent to be: the newest backup of the cluster (diff: its newest full), if any. */
  newest: ParentFacts | undefined;
  /** The parent to be whose manifest cannot be read: its id and why. */
  unreadable?: { id: string; why: string } | undefined;
  /** Ids of every backup of the cluster that has a manifest. */
  existing: ReadonlySet<string>;
  /** Ids (of the newest backup and its chain) whose last verify record says it failed. */
  failedVerify?: ReadonlySet<string>;
}

export type BackupPlan =
  | { type: "full" /** Set when an incremental was asked for. */; reason?: string }
  | {
      type: "incr";
      parent: string /** [...parent's chain, parent]: the new backup's chain. */;
      chain: string[];
    };

export function planBackupType(request: IncrementalRequest): BackupPlan {
  if (request.requested === "full") return { type: "full" };
  const full = (reason: string): BackupPlan => ({ type: "full", reason });
  const diff = request.requested === "diff";
  const newest = diff ? "the newest full" : "the newest backup";
  const { unreadable } = request;
  if (unreadable)
    return full(
      `the manifest of ${newest}, ${unreadable.id}, cannot be read (${unreadable.why}): pgha verify names the damage`,
    );
  const parent = request.newest;
  if (!parent) return full(`the cluster has no ${diff ? "full " : ""}backup to be an increment of`);
  const { server } = request;
  if (parent.systemIdentifier !== server.systemIdentifier)
    return full(
      `${newest} ${parent.id} is of system ${parent.systemIdentifier}, the server is ${server.systemIdentifier}`,
    );
  if (parent.pgVersionNum !== server.versionNum)
    return full(
      `${newest} ${parent.id} is of PostgreSQL ${parent.pgVersionNum}, the server runs ${server.versionNum}`,
    );
  if (parent.timeline !== server.timeline)
    return full(
      `${newest} ${parent.id} is on timeline ${parent.timeline}, the server on ${server.timeline}: a new timeline starts a new full`,
    );
  if (!parent.hasBlockMaps)
    return full(`${newest} ${parent.id} has no block maps (taken by an older pgha)`);
  if (diff && parent.type !== "full") return full(`${parent.id} is not a full backup`);
  const chain = [...(parent.type === "incr" ? (parent.chain ?? []) : []), parent.id];
  const missing = chain.find((id) => !request.existing.has(id));
  if (missing !== undefined) return full(`backup ${missing} of ${newest}'s chain is gone`);
  const failed = chain.find((id) => request.failedVerify?.has(id));
  if (failed !== undefined)
    return full(
      `the last verify of ${failed === parent.id ? newest : "a backup of its chain"}, ${failed}, FAILED: an increment on it would not restore either`,
    );
  const increments = chain.length; // the chain's increments after its full, plus this one
  const maxIncr = Math.min(request.maxIncr, MAX_INCR_LIMIT);
  if (increments > maxIncr)
    return full(
      maxIncr === 0
        ? "--backup-max-incr is 0"
        : `the chain of ${chain[0]} has ${increments - 1} increment${increments - 1 === 1 ? "" : "s"}, the most --backup-max-incr allows is ${maxIncr}`,
    );
  return { type: "incr", parent: parent.id, chain };
}

/** `hasBlockMaps`: given where the manifest was read without its files (parent-files.ts). */
export function parentFactsOf(
  manifest: BackupManifest,
  hasBlockMaps = manifest.files.some((file) => file.blocks !== undefined),
): ParentFacts {
  return {
    id: manifest.id,
    type: manifest.type ?? "full",
    chain: manifest.chain ?? [],
    timeline: manifest.timeline,
    systemIdentifier: manifest.systemIdentifier,
    pgVersionNum: manifest.pgVersionNum,
    hasBlockMaps,
  };
}
