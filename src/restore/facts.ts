/** What a restore plan is made from, read from the repository (I/O only). */

import { decompressStream } from "../compress/codec.js";
import type { Logger } from "../log.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
} from "../repository/backup-manifest.js";
import { walPrefix } from "../repository/keys.js";
import { decodeContentMeta } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { parseWalFileName } from "../wal/names.js";

export interface WalObject {
  name: string;
  size: number;
  /** When the object was stored: roughly when its WAL ended. */
  storedAt: string | undefined;
}

export interface RestoreFacts {
  backups: BackupManifest[];
  /** History file contents by timeline. */
  histories: Map<number, string>;
  /** Archived WAL segments and .partial files by name. */
  wal: Map<string, WalObject>;
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
  return { backups, histories, wal };
}
