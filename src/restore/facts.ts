/** What a restore plan is made from, read from the repository (I/O only). */

import { createHash } from "node:crypto";
import { decompressStream } from "../compress/codec.js";
import { concernsSettings, IntegrityError, leftOutWhenUnread, PghaError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
} from "../repository/backup-manifest.js";
import { walNameOfKey, walPrefix } from "../repository/keys.js";
import { decodeContentMeta, decodePushedAt } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import { retryAsWhole } from "../storage/retrying-store.js";
import { readAll, readFailure } from "../storage/streams.js";
import { timelinePath } from "../wal/history.js";
import { parseWalFileName, type WalFileName } from "../wal/names.js";
import { contentsOf, type WalVersion } from "../wal/versions.js";
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
  /** The object read for pushedAt: the plain key or a content-addressed one. */
  key?: string | undefined;
}

export interface RestoreFacts {
  backups: BackupManifest[];
  /** History file contents by timeline (as stored: the planner checks them). */
  histories: Map<number, string>;
  /** Archived WAL segments and .partial files by name. */
  wal: Map<string, WalObject>;
  /** When the archive was listed: a target time after it is in the future. */
  listedAt?: string | undefined;
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
  // A manifest as a plan needs it: everything but its list of files (left empty, not even
  // parsed). With 100,000 files a manifest is 30 MB in memory, and a repository holds many
  // backups; the backups the plan chose are read again whole (apply.ts, hydratePlan).
  const backups: BackupManifest[] = [];
  for (const id of await listBackupIds(store, cluster)) {
    try {
      const manifest = await readBackupManifest(store, cluster, id, { withoutFiles: true });
      // Nor the frame indexes (about 45 MB per TiB of backup), as readBackupSummary: a
      // chosen backup's are read with it again.
      const objects = manifest.objects.map(({ frames: _frames, ...object }) => object);
      backups.push({ ...manifest, objects });
    } catch (error) {
      // The wrong identity or no encryption settings: every backup would be left out; the
      // storage failing: a sound chain would be refused, or an older backup chosen.
      if (!leftOutWhenUnread(error)) throw error;
      log.warn(`backup ${id} is left out: ${(error as Error).message}`);
    }
  }
  return gatherArchiveFacts(store, cluster, backups);
}

/**
 * The facts of the archive (WAL and history files) beside backups already read: for a
 * caller that reads the manifests itself (verify, backup list).
 */
export async function gatherArchiveFacts(
  store: ObjectStore,
  cluster: string,
  backups: BackupManifest[],
): Promise<RestoreFacts> {
  const listedAt = new Date().toISOString();
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
        // A read that breaks off is retried from the start (a reset, not bad data).
        const raw = await retryAsWhole(store, `GET ${store.url}/${first.key}`, async (inner) => {
          const { info, body } = await inner.get(first.key);
          // pipe() does not pass the body's error on (a failed decryption, a reset): it is
          // forwarded, or it is an uncaught exception (exit 70) and readAll never settles.
          // Its own errors (a reset) are transient, the decompressor's are bad data. It is
          // listened for at once: one during the await below (a small body) is not lost.
          let broken: Error | undefined;
          let forward = (error: Error) => {
            broken = error;
          };
          body.once("error", (error: Error) =>
            forward(readFailure(`${store.url}/${first.key}`, error)),
          );
          const meta = decodeContentMeta(first.key, info.metadata);
          const decoder = await decompressStream(meta.compression);
          if (broken !== undefined) throw broken;
          const decompressed = body.pipe(decoder);
          forward = (error) => decompressed.destroy(error);
          const bytes = await readAll(decompressed);
          if (createHash("sha256").update(bytes).digest("hex") !== meta.sha256) {
            throw new IntegrityError(`${store.url}/${first.key} is corrupt (sha256 mismatch)`);
          }
          return bytes;
        });
        histories.set(file.timeline, raw.toString("utf8"));
      } catch (error) {
        // Bad data is reported and the file not followed; a failing store fails the plan.
        if (error instanceof PghaError && !(error instanceof IntegrityError)) throw error;
        if (concernsSettings(error)) throw error;
        unreadableHistories.set(file.timeline, (error as Error).message);
      }
    } else {
      wal.set(name, { name, size: first.size, storedAt: at?.toISOString(), key: first.key });
    }
  }
  await readPushTimes(store, { backups, histories, wal });
  return { backups, histories, wal, listedAt, conflicts, unreadableHistories };
}

/** Reads the push time of the newest segment on each timeline's path (a HEAD each). */
async function readPushTimes(store: ObjectStore, facts: RestoreFacts) {
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
    if (!object?.key) continue;
    const info = await store.head(object.key);
    object.pushedAt = info ? decodePushedAt(info.metadata) : undefined;
  }
}
