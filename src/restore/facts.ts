/** What a restore plan is made from, read from the repository (I/O only). */

import { decompressStream } from "../compress/codec.js";
import type { Logger } from "../log.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
} from "../repository/backup-manifest.js";
import { walKey, walPrefix } from "../repository/keys.js";
import { decodeContentMeta, decodePushedAt } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { timelinePath } from "../wal/history.js";
import { parseWalFileName } from "../wal/names.js";
import { pathEndSegments } from "./archive-end.js";

export interface WalObject {
  name: string;
  size: number;
  /** When the object was stored: roughly when its WAL ended (the store's clock). */
  storedAt: string | undefined;
  /**
   * When pgha pushed it (the database host's clock), read for the newest segment of each
   * timeline path only (a HEAD each: a listing carries no metadata); undefined otherwise,
   * and for objects pushed by an older pgha.
   */
  pushedAt?: string | undefined;
}

export interface RestoreFacts {
  backups: BackupManifest[];
  /** History file contents by timeline. */
  histories: Map<number, string>;
  /** Archived WAL segments and .partial files by name. */
  wal: Map<string, WalObject>;
  /** When the archive was listed: a target time after it is in the future. */
  listedAt?: string | undefined;
}

export async function gatherRestoreFacts(
  store: ObjectStore,
  cluster: string,
  log: Logger,
): Promise<RestoreFacts> {
  const backups: BackupManifest[] = [];
  for (const id of await listBackupIds(store, cluster)) {
    try {
      backups.push(await readBackupManifest(store, cluster, id));
    } catch (error) {
      log.warn(`backup ${id} is left out: ${(error as Error).message}`);
    }
  }
  const histories = new Map<number, string>();
  const wal = new Map<string, WalObject>();
  const listedAt = new Date().toISOString();
  for await (const entry of store.list(walPrefix(cluster))) {
    const name = entry.key.slice(entry.key.lastIndexOf("/") + 1);
    const file = parseWalFileName(name);
    if (file?.kind === "history") {
      const { info, body } = await store.get(entry.key);
      const meta = decodeContentMeta(entry.key, info.metadata);
      const text = (await readAll(body.pipe(await decompressStream(meta.compression)))).toString(
        "utf8",
      );
      histories.set(file.timeline, text);
    } else if (file?.kind === "segment" || file?.kind === "partial") {
      wal.set(name, { name, size: entry.size, storedAt: entry.lastModified?.toISOString() });
    }
  }
  await readPushTimes(store, cluster, { backups, histories, wal });
  return { backups, histories, wal, listedAt };
}

/** Reads the push time of the newest segment on each timeline's path (a HEAD each). */
async function readPushTimes(store: ObjectStore, cluster: string, facts: RestoreFacts) {
  const size = facts.backups[0]?.walSegmentSize;
  if (size === undefined) return;
  const timelines = new Set<number>([1, ...facts.histories.keys()]);
  for (const name of facts.wal.keys()) {
    const file = parseWalFileName(name);
    if (file) timelines.add(file.timeline);
  }
  const paths = [...timelines].map((tl) => timelinePath(tl, facts.histories.get(tl)));
  for (const name of pathEndSegments([...facts.wal.keys()], paths, size)) {
    const object = facts.wal.get(name);
    const file = parseWalFileName(name);
    if (!object || !file) continue;
    const info = await store.head(walKey(cluster, file));
    object.pushedAt = info ? decodePushedAt(info.metadata) : undefined;
  }
}
