/**
 * Repository locks: one object per lock name and cluster, taken with ifAbsent. The holder
 * refreshes it (heartbeat) while it works; a lock whose holder stopped refreshing for
 * longer than its time-to-live is stale and may be taken over, so a crashed run cannot
 * hold a cluster forever. Backup and prune take the same "cluster" lock.
 */
import { randomBytes } from "node:crypto";
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
  /** Throws LockedError if another run took the lock over meanwhile. */
  check(): void;
  /** Stops the heartbeat and removes the lock if this run still holds it. */
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
  // hostname:pid repeats across containers: a nonce makes every holder distinct.
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
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
  const lockedBy = (held: LockRecord) =>
    new LockedError(
      `cluster '${cluster}' is locked by ${held.purpose} (${held.owner}, since ${held.acquiredAt})`,
      `wait for it to finish; if that run crashed, the lock expires ${new Date(Date.parse(held.refreshedAt) + held.ttlMs).toISOString()}`,
    );
  const record = make();
  for (let attempt = 0; ; attempt++) {
    try {
      await store.put(key, Buffer.from(JSON.stringify(record)), { ifAbsent: true });
      break;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      const held = await readLock(store, cluster, options.name);
      if (held && !isStale(held, options.now())) throw lockedBy(held);
      if (attempt > 0)
        throw new LockedError(`cluster '${cluster}' lock changed hands while taking it over`);
      // Stale (or unreadable): take it over, unless someone else already did.
      const again = await readLock(store, cluster, options.name);
      if (again && held && again.owner !== held.owner) throw lockedBy(again);
      await store.delete(key);
    }
  }
  // Read back: two runs taking over the same stale lock, or two puts on a store whose
  // ifAbsent is not atomic (capabilities.atomicIfAbsent), can both believe they won; only
  // the one whose record is there did.
  const stored = await readLock(store, cluster, options.name);
  if (stored?.owner !== owner) throw lockedBy(stored ?? record);

  const refreshMs = options.refreshMs ?? Math.max(1000, Math.floor(options.ttlMs / 3));
  let current = record;
  let lost = false;
  let released = false;
  let inflight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (inflight || released || lost) return;
    inflight = (async () => {
      // Never write over a lock another run took over after this one stalled.
      const held = await readLock(store, cluster, options.name);
      if (released) return;
      if (held?.owner !== owner) {
        lost = true;
        clearInterval(timer);
        return;
      }
      current = { ...current, refreshedAt: options.now().toISOString() };
      await store.put(key, Buffer.from(JSON.stringify(current)));
    })()
      .catch(() => undefined)
      .finally(() => {
        inflight = undefined;
      });
  }, refreshMs);
  timer.unref();
  return {
    record,
    check() {
      if (lost) {
        throw new LockedError(
          `the lock on cluster '${cluster}' was taken over by another run while this one worked`,
          "this run stalled for longer than the lock's time-to-live; run it again",
        );
      }
    },
    async release() {
      released = true;
      clearInterval(timer);
      await inflight;
      const held = await readLock(store, cluster, options.name);
      if (held?.owner === owner) await store.delete(key);
    },
  };
}
