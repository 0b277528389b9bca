/**
 * Repository locks: one object per lock name and cluster, taken with ifAbsent. The holder
 * refreshes it (heartbeat) while it works; a lock whose holder stopped refreshing for
 * longer than its time-to-live is stale and may be taken over, so a crashed run cannot
 * hold a cluster forever. Backup and prune take the same "cluster" lock.
 */
import { hostname } from "node:os";
import { AlreadyExistsError, LockedError, NotFoundError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { lockKey } from "./keys.js";

export interface LockRecord {
  owner: string;
  purpose: string;
  acquiredAt: string;
  /** The holder refreshes this; the lock is stale once it is older than ttlMs. */
  refreshedAt: string;
  ttlMs: number;
}

export interface HeldLock {
  readonly record: LockRecord;
  release(): Promise<void>;
}

export interface LockOptions {
  name: string;
  purpose: string;
  ttlMs: number;
  now: () => Date;
  /** Heartbeat period; the default is a third of the TTL. */
  refreshMs?: number;
}

export async function readLock(
  store: ObjectStore,
  cluster: string,
  name: string,
): Promise<LockRecord | undefined> {
  try {
    const { body } = await store.get(lockKey(cluster, name));
    return JSON.parse((await readAll(body)).toString("utf8")) as LockRecord;
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

export function isStale(record: LockRecord, now: Date): boolean {
  return Date.parse(record.refreshedAt) + record.ttlMs < now.getTime();
}

export async function acquireLock(
  store: ObjectStore,
  cluster: string,
  options: LockOptions,
): Promise<HeldLock> {
  const key = lockKey(cluster, options.name);
  const owner = `${hostname()}:${process.pid}`;
  const make = (): LockRecord => {
    const at = options.now().toISOString();
    return {
      owner,
      purpose: options.purpose,
      acquiredAt: at,
      refreshedAt: at,
      ttlMs: options.ttlMs,
    };
  };
  let record = make();
  for (let attempt = 0; ; attempt++) {
    try {
      await store.put(key, Buffer.from(JSON.stringify(record)), { ifAbsent: true });
      break;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      const held = await readLock(store, cluster, options.name);
      if (held && !isStale(held, options.now())) {
        throw new LockedError(
          `cluster '${cluster}' is locked by ${held.purpose} (${held.owner}, since ${held.acquiredAt})`,
          `wait for it to finish; if that run crashed, the lock expires ${new Date(Date.parse(held.refreshedAt) + held.ttlMs).toISOString()}`,
        );
      }
      if (attempt > 0)
        throw new LockedError(`cluster '${cluster}' lock changed hands while taking it over`);
      // Stale (or unreadable): take it over. Of two racing takers, ifAbsent lets one win.
      await store.delete(key);
      record = make();
    }
  }
  const refreshMs = options.refreshMs ?? Math.max(1000, Math.floor(options.ttlMs / 3));
  let current = record;
  const timer = setInterval(() => {
    current = { ...current, refreshedAt: options.now().toISOString() };
    store.put(key, Buffer.from(JSON.stringify(current))).catch(() => undefined);
  }, refreshMs);
  timer.unref();
  return {
    record,
    async release() {
      clearInterval(timer);
      const held = await readLock(store, cluster, options.name);
      if (held?.owner === owner && held.acquiredAt === record.acquiredAt) await store.delete(key);
    },
  };
}
