/**
 * Repository locks: one object per lock name and cluster, taken with ifAbsent. The holder
 * refreshes it (heartbeat) while it works; a lock whose holder stopped refreshing for
 * longer than its time-to-live is stale and may be taken over, so a crashed run cannot
 * hold a cluster forever. Backup and prune take the same "cluster" lock.
 *
 * - The record names its holder's host and PID (and, where /proc tells, the process's
 *   start time and PID namespace): a lock whose holder is gone from this host (kill -9,
 *   a crash) is taken over at once instead of after its time-to-live (local-process.ts).
 * - A holder whose heartbeat keeps failing (the store is unreachable) cannot know whether
 *   someone took its lock over: it counts the lock lost a tenth of the TTL before the
 *   lock would expire, and check() then throws, so a run that checks before each delete
 *   stops before it deletes anything under an expired lock.
 * - `pgha lock break` removes a lock by hand (breakLocks below).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { AlreadyExistsError, LockedError, NotFoundError } from "../errors.js";
import { holderAlive, thisProcess } from "../local-process.js";
import type { Logger } from "../log.js";
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
  /** The holder's host and PID (absent in records of older versions). */
  host?: string;
  pid?: number;
  /** The holder's boot and process start time (processStart), where /proc tells. */
  start?: string;
  /** The holder's PID namespace, where /proc tells. */
  pidNamespace?: string;
}

/** The lock names pgha takes: backup and prune take "cluster", dump and prune "dump". */
export const LOCK_NAMES = ["cluster", "dump"] as const;

export interface HeldLock {
  readonly record: LockRecord;
  /**
   * Throws LockedError if another run took the lock over meanwhile, or if the heartbeat
   * has failed for so long that the lock may have expired. Call it before each step that
   * must not run without the lock (each delete of a prune).
   */
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
  /** Told when a stale or abandoned lock is taken over. */
  log?: Logger;
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

/** When a lock expires unless its holder refreshes it. */
export function expiresAt(record: LockRecord): Date {
  return new Date(Date.parse(record.refreshedAt) + record.ttlMs);
}

/**
 * Whether the lock's holder is known to be gone: it ran on this host (in this PID
 * namespace) and its process no longer runs. Records without host and PID: unknown (false).
 */
export function isAbandoned(record: LockRecord): boolean {
  if (record.host === undefined || typeof record.pid !== "number") return false;
  return !holderAlive({
    host: record.host,
    pid: record.pid,
    ...(record.start !== undefined ? { start: record.start } : {}),
    ...(record.pidNamespace !== undefined ? { pidNamespace: record.pidNamespace } : {}),
  });
}

/** Why a lock may be taken over, or undefined while its holder may still work. */
export function takeoverReason(record: LockRecord, now: Date): string | undefined {
  if (isStale(record, now)) return `it expired at ${expiresAt(record).toISOString()}`;
  if (isAbandoned(record)) return `its process ${record.pid} on ${record.host} is gone`;
  return undefined;
}

/** Who holds a lock, for messages: "prune (host:123:ab12, since ...)". */
export function describeHolder(record: LockRecord): string {
  return `${record.purpose} (${record.owner}, since ${record.acquiredAt})`;
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
      ...thisProcess(),
    };
  };
  const lockedBy = (held: LockRecord) =>
    new LockedError(
      `cluster '${cluster}' is locked by ${describeHolder(held)}`,
      `wait for it to finish; if that run crashed, the lock expires ${expiresAt(held).toISOString()} (or see 'pgha lock break --help')`,
    );
  const record = make();
  for (let attempt = 0; ; attempt++) {
    try {
      await store.put(key, Buffer.from(JSON.stringify(record)), { ifAbsent: true });
      break;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      const held = await readLock(store, cluster, options.name);
      const why = held && takeoverReason(held, options.now());
      if (held && why === undefined) throw lockedBy(held);
      if (attempt > 0)
        throw new LockedError(`cluster '${cluster}' lock changed hands while taking it over`);
      // Stale, abandoned (or unreadable): take it over, unless someone else already did.
      const again = await readLock(store, cluster, options.name);
      if (again && held && again.owner !== held.owner) throw lockedBy(again);
      options.log?.warn(
        held
          ? `taking over the '${options.name}' lock of ${describeHolder(held)}: ${why}`
          : `taking over the unreadable '${options.name}' lock`,
      );
      await store.delete(key);
    }
  }
  // Read back: two runs taking over the same stale lock, or two puts on a store whose
  // ifAbsent is not atomic (capabilities.atomicIfAbsent), can both believe they won; only
  // the one whose record is there did.
  const stored = await readLock(store, cluster, options.name);
  if (stored?.owner !== owner) throw lockedBy(stored ?? record);

  const refreshMs = options.refreshMs ?? Math.max(1000, Math.floor(options.ttlMs / 3));
  // The last refreshedAt stored (taken before the put: never later than the stored one).
  let refreshedAt = Date.parse(record.refreshedAt);
  const givesUpAt = () => refreshedAt + options.ttlMs - Math.floor(options.ttlMs / 10);
  let current = record;
  let lost: "taken over" | "expired" | undefined;
  let released = false;
  let inflight: Promise<void> | undefined;
  const expireIfDue = () => {
    if (lost === undefined && options.now().getTime() >= givesUpAt()) {
      lost = "expired";
      clearInterval(timer);
    }
  };
  const timer = setInterval(() => {
    if (inflight || released || lost) return;
    inflight = (async () => {
      // Never write over a lock another run took over after this one stalled.
      const held = await readLock(store, cluster, options.name);
      if (released) return;
      if (held?.owner !== owner) {
        lost = "taken over";
        clearInterval(timer);
        return;
      }
      const next = { ...current, refreshedAt: options.now().toISOString() };
      await store.put(key, Buffer.from(JSON.stringify(next)));
      current = next;
      refreshedAt = Date.parse(next.refreshedAt);
    })()
      .catch((error: unknown) => {
        // A failed heartbeat: the lock runs out unless a later one works.
        options.log?.warn(
          `cannot refresh the '${options.name}' lock: ${(error as Error).message ?? error}`,
        );
        expireIfDue();
      })
      .finally(() => {
        inflight = undefined;
      });
  }, refreshMs);
  timer.unref();
  return {
    record,
    check() {
      expireIfDue();
      if (lost === "taken over") {
        throw new LockedError(
          `the lock on cluster '${cluster}' was taken over by another run while this one worked`,
          "this run stalled for longer than the lock's time-to-live; run it again",
        );
      }
      if (lost === "expired") {
        throw new LockedError(
          `the lock on cluster '${cluster}' ran out: it could not be refreshed since ${new Date(refreshedAt).toISOString()}, so this run stopped`,
          "the repository did not accept the lock's heartbeat (see the warnings above); run it again once it is reachable",
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

/**
 * A lock as `pgha lock list` and `pgha lock break` see it. `running`: its holder runs on
 * this host; `held`: refreshed within its time-to-live by a holder this host cannot see
 * (another host, or a record without host and PID); `expired`; `abandoned`: its process on
 * this host is gone (taken over at once by the next run); `unreadable`: not a lock record.
 */
export type LockState = "running" | "held" | "expired" | "abandoned" | "unreadable";

export interface LockStatus {
  name: string;
  state: LockState;
  record: LockRecord | undefined;
}

export async function inspectLocks(
  store: ObjectStore,
  cluster: string,
  now: Date,
  names: readonly string[] = LOCK_NAMES,
): Promise<LockStatus[]> {
  const out: LockStatus[] = [];
  for (const name of names) {
    const record = await readLock(store, cluster, name);
    if (!record) {
      if (await store.head(lockKey(cluster, name)))
        out.push({ name, state: "unreadable", record: undefined });
      continue;
    }
    const state: LockState = isAbandoned(record)
      ? "abandoned"
      : isStale(record, now)
        ? "expired"
        : record.host === hostname() && typeof record.pid === "number"
          ? "running"
          : "held";
    out.push({ name, state, record });
  }
  return out;
}

/**
 * Removes a lock `inspectLocks` saw, if it is still the same record (same holder, or
 * still unreadable); false when it changed hands or went away meanwhile. A holder that is
 * still working notices at its next heartbeat and stops at its next check().
 */
export async function breakLock(
  store: ObjectStore,
  cluster: string,
  seen: LockStatus,
): Promise<boolean> {
  const key = lockKey(cluster, seen.name);
  const now = await readLock(store, cluster, seen.name);
  if (
    seen.record ? now?.owner !== seen.record.owner : now !== undefined || !(await store.head(key))
  )
    return false;
  await store.delete(key);
  return true;
}
