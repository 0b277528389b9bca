/**
 * The objects that store one WAL name: its plain key (written where the store's
 * conditional writes are atomic, and by pgha before content-addressed names) and its
 * content-addressed keys `<key>.<sha256>` (written where they are not proven). See
 * FORMAT.md, "WAL under content-addressed names".
 */
import { WalConflictError } from "../errors.js";
import { walKey, walNameOfKey } from "../repository/keys.js";
import { decodeContentMeta } from "../repository/object-meta.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { WalFileName } from "./names.js";

export interface WalVersion {
  key: string;
  /** From the key's name; undefined for the plain key (its metadata says). */
  sha256: string | undefined;
  size: number;
}

/** Every object that stores `file`, plain key first: one listing of the name's prefix. */
export async function listWalVersions(
  store: ObjectStore,
  cluster: string,
  file: WalFileName,
): Promise<WalVersion[]> {
  const plain = walKey(cluster, file);
  const versions: WalVersion[] = [];
  // The prefix also lists longer names (a segment's .partial or .backup): keep exact ones.
  for await (const entry of store.list(plain)) {
    if (entry.key !== plain && !entry.key.startsWith(`${plain}.`)) continue;
    const { name, sha256 } = walNameOfKey(entry.key);
    if (name !== file.name) continue;
    versions.push({ key: entry.key, sha256, size: entry.size });
  }
  return versions.sort((a, b) => (a.sha256 === undefined ? -1 : b.sha256 === undefined ? 1 : 0));
}

/**
 * The versions with their content's sha256 filled in (a HEAD of the plain key, only when
 * there are others to compare it with), grouped by content: more than one group is a
 * conflict.
 */
export async function contentsOf(
  store: ObjectStore,
  versions: WalVersion[],
): Promise<Map<string, WalVersion[]>> {
  const groups = new Map<string, WalVersion[]>();
  for (const version of versions) {
    let sha256 = version.sha256;
    if (sha256 === undefined) {
      if (versions.length === 1) sha256 = "";
      else {
        const info = await store.head(version.key);
        if (!info) continue; // deleted meanwhile
        sha256 = decodeContentMeta(version.key, info.metadata).sha256;
      }
    }
    groups.set(sha256, [...(groups.get(sha256) ?? []), { ...version, sha256 }]);
  }
  return groups;
}

/**
 * The error for a name stored with different contents: it names every one of them.
 * `existing`: the objects are what was there before this file (nothing of it written).
 */
export function conflictError(
  store: ObjectStore,
  name: string,
  groups: Map<string, WalVersion[]>,
  what: string,
  existing = false,
): WalConflictError {
  const list = [...groups.values()]
    .map((versions) => versions.map((v) => `${store.url}/${v.key}`).join(" = "))
    .join(" and ");
  const lead = existing
    ? `${name} is already archived at ${list} with different content`
    : `${name} is archived with different content: ${list}`;
  return new WalConflictError(
    `${lead}; ${what}`,
    "two servers archived the same timeline (an old primary after failover?): find out which copy the surviving cluster wrote, delete the other object, and stop the server that is not the primary",
  );
}
