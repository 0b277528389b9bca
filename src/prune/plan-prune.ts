/**
 * Prune planning: gatherPruneFacts reads the repository's catalog (I/O); planPrune is a
 * pure function from those facts, the policy and now to what would be deleted and why.
 */
import {
  isWalKept,
  planRetention,
  planWalHorizon,
  type RetentionPlan,
  type RetentionPolicy,
  type WalHorizon,
} from "../../retention/index.js";
import type { RetentionSettings } from "../config/load.js";
import { leftOutWhenUnread } from "../errors.js";
import type { Logger } from "../log.js";
import { chainOf } from "../repository/backup-chain.js";
import { BACKUP_ID, listBackupIds, readBackupSummary } from "../repository/backup-manifest.js";
import { listDumpIds, readDumpManifest } from "../repository/dump-manifest.js";
import { readIdentity } from "../repository/identity.js";
import {
  backupManifestKey,
  backupPinKey,
  backupsPrefix,
  clusterPrefix,
  dumpManifestKey,
  dumpPinKey,
  dumpsPrefix,
  walNameOfKey,
  walPrefix,
} from "../repository/keys.js";
import { isPinned } from "../repository/pin.js";
import type { Leftover, ObjectStore } from "../storage/object-store.js";
import { parseSegmentFileName } from "../wal/names.js";

export interface CatalogEntry {
  id: string;
  time: string;
  pinned: boolean;
  /** Every object of the entry, manifest first. */
  keys: string[];
  bytes: number;
}

export interface BackupEntry extends CatalogEntry {
  timeline: number;
  startWal: string;
  stopWal: string;
  stopTime: string;
  /** "incr": restorable only with every backup of `chain` (repository/backup-chain.ts). */
  type: "full" | "incr";
  chain: string[];
}

export interface StoredObject {
  key: string;
  size: number;
}

export interface PruneFacts {
  backups: BackupEntry[];
  dumps: CatalogEntry[];
  /** Objects under backups/ or dumps/ of an id without a manifest: left by a crashed run. */
  debris: StoredObject[];
  /** Every archived WAL object, with the WAL file name it stores (either layout). */
  wal: (StoredObject & { name: string })[];
  walSegmentSize: number | undefined;
  /** Manifests pgha could not read: their objects are never deleted. */
  unreadable: string[];
  /** Files of writes that died (a local repository's .tmp-*), idle for LEFTOVER_IDLE_MS. */
  leftovers: Leftover[];
}

/**
 * How long a local repository's .tmp-* file must have been idle before prune removes it:
 * a live put writes into its file all along, and renames it within seconds of the last
 * write, so an hour-old one belongs to a wal-push or backup that was killed.
 */
export const LEFTOVER_IDLE_MS = 60 * 60_000;

export interface PrunePlan {
  backups: RetentionPlan;
  dumps: RetentionPlan;
  horizon: WalHorizon;
  deleteBackups: CatalogEntry[];
  deleteDumps: CatalogEntry[];
  deleteDebris: StoredObject[];
  deleteWal: StoredObject[];
  deleteLeftovers: Leftover[];
  keptWal: number;
  freedBytes: number;
}

export function policyFrom(settings: RetentionSettings): RetentionPolicy {
  return {
    last: settings.last,
    hourly: settings.hourly,
    daily: settings.daily,
    weekly: settings.weekly,
    monthly: settings.monthly,
    yearly: settings.yearly,
    ...(settings.within !== undefined ? { within: settings.within } : {}),
    ...(settings.zone !== undefined ? { zone: settings.zone } : {}),
  };
}

async function listObjects(store: ObjectStore, prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const entry of store.list(prefix)) out.push({ key: entry.key, size: entry.size });
  return out;
}

export async function gatherPruneFacts(
  store: ObjectStore,
  cluster: string,
  log: Logger,
  /** Leftovers last written before this are listed; default LEFTOVER_IDLE_MS ago. */
  leftoversBefore: Date = new Date(Date.now() - LEFTOVER_IDLE_MS),
): Promise<PruneFacts> {
  const unreadable: string[] = [];
  const backupObjects = await listObjects(store, backupsPrefix(cluster));
  const dumpObjects = await listObjects(store, dumpsPrefix(cluster));
  const objectsOf = (objects: StoredObject[], prefix: string, id: string) =>
    objects.filter((o) => o.key.startsWith(`${prefix}${id}/`));
  // A pin record (pin.ts) is read only where the listing shows one.
  const pinnedOf = (objects: StoredObject[], pinKey: string, manifestPinned: boolean) =>
    objects.some((o) => o.key === pinKey)
      ? isPinned(store, pinKey, manifestPinned)
      : Promise.resolve(manifestPinned);

  const backups: BackupEntry[] = [];
  for (const id of await listBackupIds(store, cluster)) {
    try {
      const m = await readBackupSummary(store, cluster, id);
      const objects = objectsOf(backupObjects, backupsPrefix(cluster), id);
      const manifestKey = backupManifestKey(cluster, id);
      backups.push({
        id,
        time: m.startTime,
        pinned: await pinnedOf(objects, backupPinKey(cluster, id), m.pinned),
        keys: [manifestKey, ...objects.map((o) => o.key).filter((k) => k !== manifestKey)],
        bytes: objects.reduce((s, o) => s + o.size, 0),
        timeline: m.timeline,
        startWal: m.startWal,
        stopWal: m.stopWal,
        stopTime: m.stopTime,
        ...chainOf(m),
      });
    } catch (error) {
      if (!leftOutWhenUnread(error)) throw error;
      log.warn(`backup ${id} is kept untouched: ${(error as Error).message}`);
      unreadable.push(id);
    }
  }
  const dumps: CatalogEntry[] = [];
  for (const id of await listDumpIds(store, cluster)) {
    try {
      const m = await readDumpManifest(store, cluster, id);
      const objects = objectsOf(dumpObjects, dumpsPrefix(cluster), id);
      const manifestKey = dumpManifestKey(cluster, id);
      dumps.push({
        id,
        time: m.startTime,
        pinned: await pinnedOf(objects, dumpPinKey(cluster, id), m.pinned),
        keys: [manifestKey, ...objects.map((o) => o.key).filter((k) => k !== manifestKey)],
        bytes: objects.reduce((s, o) => s + o.size, 0),
      });
    } catch (error) {
      if (!leftOutWhenUnread(error)) throw error;
      log.warn(`dump set ${id} is kept untouched: ${(error as Error).message}`);
      unreadable.push(id);
    }
  }
  const listed = new Set([...backups.map((b) => b.id), ...dumps.map((d) => d.id), ...unreadable]);
  const debris = [
    ...backupObjects.filter((o) => isDebris(o.key, backupsPrefix(cluster), listed)),
    ...dumpObjects.filter((o) => isDebris(o.key, dumpsPrefix(cluster), listed)),
  ];
  // A content-addressed key (FORMAT.md) goes with its WAL name: kept or deleted with it.
  const wal = (await listObjects(store, walPrefix(cluster))).map((o) => ({
    ...o,
    name: walNameOfKey(o.key).name,
  }));
  const identity = await readIdentity(store, cluster);
  const leftovers = (await store.listLeftovers?.(clusterPrefix(cluster), leftoversBefore)) ?? [];
  return {
    backups,
    dumps,
    debris,
    wal,
    walSegmentSize: identity?.walSegmentSize,
    unreadable,
    leftovers,
  };
}

/** The engine keeps chains; this is the last line before a delete that would break one. */
function assertChainsKept(kept: readonly BackupEntry[], deleted: readonly BackupEntry[]): void {
  const gone = new Set(deleted.map((b) => b.id));
  for (const b of kept) {
    const needed = b.chain.find((id) => gone.has(id));
    if (needed !== undefined)
      throw new Error(`prune planned to delete backup ${needed}, which kept backup ${b.id} needs`);
  }
}

function isDebris(key: string, prefix: string, listed: Set<string>): boolean {
  const id = key.slice(prefix.length).split("/")[0] ?? "";
  return BACKUP_ID.test(id) && !listed.has(id);
}

/**
 * Pure: what to delete, with the engine's reasons. Backups keep the base of the
 * point-in-time window too (unless `allowShorterWindow`); dump sets have no window.
 * A kept backup keeps its chain (the engine's `needed by`); backups are deleted newest
 * first, so an incremental always goes before the backups it needs and a prune that
 * stops half-way never leaves an incremental without its full.
 */
export function planPrune(
  facts: PruneFacts,
  policy: RetentionPolicy,
  pitrWindow: string,
  now: string,
  options: { allowShorterWindow?: boolean } = {},
): PrunePlan {
  const backups = planRetention(
    facts.backups.map((b) => ({
      id: b.id,
      time: b.time,
      end: b.stopTime,
      pinned: b.pinned,
      type: b.type,
      chain: b.chain,
    })),
    policy,
    now,
    { duration: pitrWindow, allowShorter: options.allowShorterWindow === true },
  );
  const dumps = planRetention(facts.dumps, policy, now);
  const keptBackups = facts.backups.filter((b) => backups.keep.includes(b.id));
  const timelines = [
    ...new Set(
      facts.wal.map((w) => parseSegmentFileName(w.name)?.timeline).filter((t) => t !== undefined),
    ),
  ];
  const size = facts.walSegmentSize;
  const horizon =
    size === undefined
      ? { anchor: null, ranges: [], keepHistoryFrom: null, keepAll: true }
      : planWalHorizon({
          kept: keptBackups,
          pitrWindow,
          now,
          walSegmentSize: size,
          timelines,
          ...(policy.zone !== undefined ? { zone: policy.zone } : {}),
        });
  const deleteWal =
    size === undefined ? [] : facts.wal.filter((w) => !isWalKept(w.name, horizon, size));
  const deleteBackups = facts.backups
    .filter((b) => backups.delete.includes(b.id))
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  assertChainsKept(keptBackups, deleteBackups);
  const deleteDumps = facts.dumps.filter((d) => dumps.delete.includes(d.id));
  const freedBytes =
    [...deleteBackups, ...deleteDumps].reduce((s, e) => s + e.bytes, 0) +
    [...facts.debris, ...deleteWal, ...facts.leftovers].reduce((s, o) => s + o.size, 0);
  return {
    backups,
    dumps,
    horizon,
    deleteBackups,
    deleteDumps,
    deleteDebris: facts.debris,
    deleteWal,
    deleteLeftovers: facts.leftovers,
    keptWal: facts.wal.length - deleteWal.length,
    freedBytes,
  };
}
