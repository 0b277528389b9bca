/**
 * Pure: what one listing of a cluster's prefix tells about it (`pgha cluster list`), and
 * the plan of `pgha cluster delete` (every object under the prefix, manifests first;
 * refused while a run holds one of its locks).
 */
import {
  backupsPrefix,
  dumpsPrefix,
  identityKey,
  lockKey,
  walNameOfKey,
  walPrefix,
} from "../repository/keys.js";
import { LOCK_NAMES, type LockStatus } from "../repository/lock.js";
import type { ListEntry } from "../storage/object-store.js";
import { parseWalFileName } from "../wal/names.js";

export interface ClusterSummary {
  cluster: string;
  backups: number;
  dumps: number;
  walFiles: number;
  walBytes: number;
  backupBytes: number;
  dumpBytes: number;
  objects: number;
  bytes: number;
  /** The newest archived WAL segment (by name) and when it was stored. */
  lastArchivedWal: string | null;
  lastArchivedTime: string | null;
}

const isManifest = (key: string, prefix: string) =>
  key.startsWith(prefix) && key.slice(prefix.length).split("/")[1] === "manifest.json";

export function summarizeCluster(cluster: string, objects: readonly ListEntry[]): ClusterSummary {
  const under = (prefix: string) => objects.filter((o) => o.key.startsWith(prefix));
  const sum = (list: readonly ListEntry[]) => list.reduce((s, o) => s + o.size, 0);
  const wal = under(walPrefix(cluster));
  const backups = under(backupsPrefix(cluster));
  const dumps = under(dumpsPrefix(cluster));
  let last: { name: string; entry: ListEntry } | undefined;
  for (const entry of wal) {
    const name = walNameOfKey(entry.key).name;
    const file = parseWalFileName(name);
    if (file?.kind !== "segment") continue;
    if (!last || name > last.name) last = { name, entry };
  }
  return {
    cluster,
    backups: backups.filter((o) => isManifest(o.key, backupsPrefix(cluster))).length,
    dumps: dumps.filter((o) => isManifest(o.key, dumpsPrefix(cluster))).length,
    walFiles: wal.length,
    walBytes: sum(wal),
    backupBytes: sum(backups),
    dumpBytes: sum(dumps),
    objects: objects.length,
    bytes: sum(objects),
    lastArchivedWal: last?.name ?? null,
    lastArchivedTime: last?.entry.lastModified?.toISOString() ?? null,
  };
}

export type ClusterDeletePlan =
  | { kind: "delete"; summary: ClusterSummary; keys: string[] }
  | { kind: "refused"; summary: ClusterSummary; reason: string; hint: string };

/**
 * Every object of the cluster but its locks (the deleting run holds them and releases them
 * last), backup and dump manifests first so that nothing half-deleted is ever listed.
 * Refused while a lock is held by a run that may still work (running, or refreshed
 * within its time-to-live); expired and abandoned locks are taken over.
 */
export function planClusterDelete(
  cluster: string,
  objects: readonly ListEntry[],
  locks: readonly LockStatus[],
): ClusterDeletePlan {
  const summary = summarizeCluster(cluster, objects);
  const live = locks.filter((l) => l.state === "running" || l.state === "held");
  if (live.length > 0) {
    const who = live
      .map((l) => `'${l.name}' by ${l.record?.purpose ?? "?"} (${l.record?.owner ?? "?"})`)
      .join(", ");
    return {
      kind: "refused",
      summary,
      reason: `cluster '${cluster}' is locked: ${who}`,
      hint: "wait for that run to finish (see 'pgha lock list'); a crashed run's lock expires or can be broken",
    };
  }
  const lockKeys = new Set(LOCK_NAMES.map((name) => lockKey(cluster, name)));
  const keys = objects.map((o) => o.key).filter((k) => !lockKeys.has(k));
  const manifests = keys.filter(
    (k) => isManifest(k, backupsPrefix(cluster)) || isManifest(k, dumpsPrefix(cluster)),
  );
  const first = new Set(manifests);
  // The identity last: while any WAL or backup is left, the cluster keeps its identity.
  const identity = identityKey(cluster);
  const rest = keys.filter((k) => !first.has(k) && k !== identity);
  return {
    kind: "delete",
    summary,
    keys: [...manifests, ...rest, ...(keys.includes(identity) ? [identity] : [])],
  };
}
