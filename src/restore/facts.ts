/** What a restore plan is made from, read from the repository (I/O only). */

import { createHash } from "node:crypto";
import { decompressStream } from "../compress/codec.js";
import { IntegrityError, PghaError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
} from "../repository/backup-manifest.js";
import { walNameOfKey, walPrefix } from "../repository/keys.js";
import { decodeContentMeta } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { parseWalFileName, type WalFileName } from "../wal/names.js";
import { contentsOf, type WalVersion } from "../wal/versions.js";

export interface WalObject {
  name: string;
  size: number;
  /** When the object was stored: roughly when its WAL ended. */
  storedAt: string | undefined;
}

export interface RestoreFacts {
  backups: BackupManifest[];
  /** History file contents by timeline (as stored: the planner checks them). */
  histories: Map<number, string>;
  /** Archived WAL segments and .partial files by name. */
  wal: Map<string, WalObject>;
  /**
   * Names stored with different contents (content-addressed keys, FORMAT.md), with the
   * objects of each content: wal-fetch refuses them, so a plan that needs one is refused.
   */
  conflicts?: Map<string, string[]>;
  /** History files that cannot be read or are stored with different contents, and why. */
  unreadableHistories?: Map<number, string>;
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
  // Every object of each name: the plain key and content-addressed ones.
  const byName = new Map<string, { file: WalFileName; versions: WalVersion[]; at?: Date }>();
  for await (const entry of store.list(walPrefix(cluster))) {
    const { name, sha256 } = walNameOfKey(entry.key);
    const file = parseWalFileName(name);
    if (file?.kind !== "history" && file?.kind !== "segment" && file?.kind !== "partial") continue;
    const known = byName.get(name) ?? { file, versions: [] };
    known.versions.push({ key: entry.key, sha256, size: entry.size });
    if (entry.lastModified && (!known.at || entry.lastModified < known.at))
      known.at = entry.lastModified;
    byName.set(name, known);
  }
  const histories = new Map<number, string>();
  const unreadableHistories = new Map<number, string>();
  const wal = new Map<string, WalObject>();
  const conflicts = new Map<string, string[]>();
  for (const [name, { file, versions, at }] of byName) {
    const groups = versions.length > 1 ? await contentsOf(store, versions) : undefined;
    if (groups && groups.size > 1) {
      const keys = [...groups.values()].map((g) => g.map((v) => v.key).join(" = "));
      if (file.kind === "history") {
        unreadableHistories.set(
          file.timeline,
          `stored with ${groups.size} different contents (${keys.join(", ")})`,
        );
        continue;
      }
      conflicts.set(name, keys);
    }
    const first = versions[0];
    if (!first) continue;
    if (file.kind === "history") {
      try {
        const { info, body } = await store.get(first.key);
        const meta = decodeContentMeta(first.key, info.metadata);
        const raw = await readAll(body.pipe(await decompressStream(meta.compression)));
        if (createHash("sha256").update(raw).digest("hex") !== meta.sha256) {
          throw new IntegrityError(`${store.url}/${first.key} is corrupt (sha256 mismatch)`);
        }
        histories.set(file.timeline, raw.toString("utf8"));
      } catch (error) {
        // Bad data is reported and the file not followed; a failing store fails the plan.
        if (error instanceof PghaError && !(error instanceof IntegrityError)) throw error;
        unreadableHistories.set(file.timeline, (error as Error).message);
      }
    } else {
      wal.set(name, { name, size: first.size, storedAt: at?.toISOString() });
    }
  }
  return { backups, histories, wal, conflicts, unreadableHistories };
}
