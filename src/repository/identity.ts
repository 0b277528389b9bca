/**
 * The cluster identity: recorded from the first WAL segment a cluster archives, and from
 * then on compared with every segment pushed under that cluster name. This is what stops
 * two clusters from writing into one prefix.
 */
import type { Readable } from "node:stream";
import {
  AlreadyExistsError,
  ClusterMismatchError,
  IntegrityError,
  NotFoundError,
} from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import type { LongPageHeader } from "../wal/page-header.js";
import { FORMAT_VERSION, identityKey } from "./keys.js";

export interface ClusterIdentity {
  format: number;
  cluster: string;
  /** pg_control's system identifier, a uint64 as a decimal string. */
  systemIdentifier: string;
  /** PostgreSQL major version from the WAL magic, or null when pgha does not know the magic. */
  pgVersion: string | null;
  /** xlp_magic, as 0xD110. */
  walMagic: string;
  walSegmentSize: number;
  walBlockSize: number;
  createdAt: string;
}

export function identityFromHeader(
  cluster: string,
  header: LongPageHeader,
  now: Date,
): ClusterIdentity {
  return {
    format: FORMAT_VERSION,
    cluster,
    systemIdentifier: header.systemIdentifier,
    pgVersion: header.pgVersion ?? null,
    walMagic: `0x${header.magic.toString(16).toUpperCase()}`,
    walSegmentSize: header.segmentSize,
    walBlockSize: header.blockSize,
    createdAt: now.toISOString(),
  };
}

export async function readIdentity(
  store: ObjectStore,
  cluster: string,
): Promise<ClusterIdentity | undefined> {
  const key = identityKey(cluster);
  let body: Readable;
  try {
    ({ body } = await store.get(key));
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
  const text = (await readAll(body)).toString("utf8");
  try {
    const parsed = JSON.parse(text) as ClusterIdentity;
    if (typeof parsed.systemIdentifier !== "string" || typeof parsed.walSegmentSize !== "number") {
      throw new Error("missing fields");
    }
    return parsed;
  } catch (error) {
    throw new IntegrityError(
      `${store.url}/${key} is corrupt: ${(error as Error).message}`,
      "restore it from a copy; it records the cluster's system identifier",
    );
  }
}

/**
 * Returns the recorded identity, recording `candidate` first if there is none (write-once:
 * of two racing first pushes one wins, the other compares against the winner).
 * Throws ClusterMismatchError when the segment's header does not match it.
 */
export async function ensureIdentity(
  store: ObjectStore,
  candidate: ClusterIdentity,
): Promise<ClusterIdentity> {
  let recorded = await readIdentity(store, candidate.cluster);
  if (!recorded) {
    try {
      const body = Buffer.from(`${JSON.stringify(candidate, null, 2)}\n`);
      await store.put(identityKey(candidate.cluster), body, { ifAbsent: true });
      // Where ifAbsent is not known to be atomic a racing writer may have won: read back.
      recorded =
        store.capabilities.atomicIfAbsent === true
          ? candidate
          : ((await readIdentity(store, candidate.cluster)) ?? candidate);
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      recorded = await readIdentity(store, candidate.cluster);
      if (!recorded) throw error;
    }
  }
  checkIdentity(recorded, candidate, store.url);
  return recorded;
}

export function checkIdentity(recorded: ClusterIdentity, seen: ClusterIdentity, url: string): void {
  const where = `${url} cluster '${recorded.cluster}'`;
  const hint =
    "each cluster needs its own --cluster name (PGHA_CLUSTER); after initdb or pg_upgrade a cluster is a new cluster";
  if (recorded.systemIdentifier !== seen.systemIdentifier) {
    throw new ClusterMismatchError(
      `segment is from system ${seen.systemIdentifier} but ${where} is system ${recorded.systemIdentifier}`,
      hint,
    );
  }
  if (recorded.walSegmentSize !== seen.walSegmentSize || recorded.walMagic !== seen.walMagic) {
    throw new ClusterMismatchError(
      `segment has WAL format ${seen.walMagic} with ${seen.walSegmentSize}-byte segments but ${where} has ${recorded.walMagic} with ${recorded.walSegmentSize}-byte segments`,
      hint,
    );
  }
}
