/** pgha lock list and pgha lock break: the repository locks of a cluster. */
import type { OptionsOf } from "../../config/flags.js";
import { RefusedError, UsageError } from "../../errors.js";
import {
  breakLock,
  expiresAt,
  inspectLocks,
  LOCK_NAMES,
  type LockStatus,
} from "../../repository/lock.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { reportNote } from "../report.js";
import { renderTable } from "../table.js";

const STATE_WORDS: Record<LockStatus["state"], string> = {
  running: "held by a process running on this host",
  held: "held (refreshed within its time-to-live)",
  expired: "expired: the next run takes it over",
  abandoned: "abandoned: its process on this host is gone; the next run takes it over",
  unreadable: "unreadable: not a lock record",
};

function rows(locks: readonly LockStatus[]): string[][] {
  return locks.map(({ name, state, record }) => [
    name,
    record ? record.purpose : "-",
    record ? `${record.host ?? "?"}:${record.pid ?? "?"}` : "-",
    record ? record.acquiredAt : "-",
    record ? expiresAt(record).toISOString() : "-",
    STATE_WORDS[state],
  ]);
}

const HEADERS = ["lock", "purpose", "host:pid", "since", "expires", "state"];

export async function lockListCommand(opts: OptionsOf<"lock list">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const locks = await inspectLocks(store, config.cluster, new Date());
  if (opts.json === true) process.stdout.write(`${JSON.stringify(locks, null, 2)}\n`);
  else if (locks.length === 0)
    process.stdout.write(`no locks on cluster '${config.cluster}': nothing runs\n`);
  else process.stdout.write(renderTable(HEADERS, rows(locks)));
  return 0;
}

export async function lockBreakCommand(
  name: string | undefined,
  opts: OptionsOf<"lock break">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  if (name !== undefined && !(LOCK_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`'${name}' is not a lock name`, `the locks are ${LOCK_NAMES.join(", ")}`);
  }
  const store = await openStore(config, log);
  const locks = await inspectLocks(
    store,
    config.cluster,
    new Date(),
    name === undefined ? LOCK_NAMES : [name],
  );
  if (locks.length === 0) {
    process.stdout.write(`no locks on cluster '${config.cluster}': nothing to break\n`);
    return 0;
  }
  process.stdout.write(renderTable(HEADERS, rows(locks)));
  const running = locks.filter((l) => l.state === "running");
  if (running.length > 0) {
    const pids = running.map((l) => l.record?.pid).join(", ");
    throw new RefusedError(
      `the ${running.map((l) => `'${l.name}'`).join(" and ")} lock is held by a process still running on this host (${pids})`,
      `stop that run first (kill ${pids}); its lock is then taken over at once`,
    );
  }
  if (!opts.confirm) {
    reportNote(
      "nothing was removed: add --confirm to break these locks (a run still working elsewhere stops at its next heartbeat)",
    );
    return 0;
  }
  for (const lock of locks) {
    if (await breakLock(store, config.cluster, lock)) reportNote(`broke the '${lock.name}' lock`);
    else reportNote(`the '${lock.name}' lock changed meanwhile: left alone`, "warn");
  }
  return 0;
}
