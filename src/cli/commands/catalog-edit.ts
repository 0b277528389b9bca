/**
 * pgha backup pin|unpin|delete and pgha dump pin|unpin|delete: thin layers over the pin
 * record (repository/pin.ts), the pure delete plans (catalog/plan-delete.ts) and the prune
 * applier's deletes (prune/apply-prune.ts, the lock checked before each delete).
 */
import { type DeletePlan, planBackupDelete, planDumpDelete } from "../../catalog/plan-delete.js";
import type { Config } from "../../config/load.js";
import { RefusedError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { deleteCatalogEntries } from "../../prune/apply-prune.js";
import { gatherPruneFacts } from "../../prune/plan-prune.js";
import { resolveBackup } from "../../repository/backup-manifest.js";
import { resolveDump } from "../../repository/dump-manifest.js";
import { backupPinKey, dumpPinKey } from "../../repository/keys.js";
import { acquireLock, type HeldLock } from "../../repository/lock.js";
import { isPinned, writePin } from "../../repository/pin.js";
import type { ObjectStore } from "../../storage/object-store.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { reportNote } from "../report.js";
import { formatBytes } from "../table.js";

export type CatalogKind = "backup" | "dump";

const NOUN: Record<CatalogKind, string> = { backup: "backup", dump: "dump set" };

/** Backups change under the lock backup and prune take; dump sets under dump's and prune's. */
const LOCK_NAME: Record<CatalogKind, string> = { backup: "cluster", dump: "dump" };

async function withLock<T>(
  store: ObjectStore,
  config: Config,
  log: Logger,
  kind: CatalogKind,
  purpose: string,
  run: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(store, config.cluster, {
    name: LOCK_NAME[kind],
    purpose,
    ttlMs: 5 * 60_000,
    now: () => new Date(),
    log,
  });
  try {
    return await run(lock);
  } finally {
    await lock.release().catch(() => undefined);
  }
}

async function resolveId(store: ObjectStore, cluster: string, kind: CatalogKind, ref: string) {
  const m =
    kind === "backup"
      ? await resolveBackup(store, cluster, ref)
      : await resolveDump(store, cluster, ref);
  return { id: m.id, manifestPinned: m.pinned };
}

const pinKey = (kind: CatalogKind, cluster: string, id: string) =>
  kind === "backup" ? backupPinKey(cluster, id) : dumpPinKey(cluster, id);

/** pin (pinned = true) or unpin: a record beside the manifest, never the manifest itself. */
export async function pinCommand(
  kind: CatalogKind,
  ref: string,
  pinned: boolean,
  opts: Parameters<typeof loadContext>[0],
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const { id, manifestPinned } = await resolveId(store, config.cluster, kind, ref);
  const key = pinKey(kind, config.cluster, id);
  const word = pinned ? "pinned" : "unpinned";
  return withLock(store, config, log, kind, pinned ? "pin" : "unpin", async (lock) => {
    if ((await isPinned(store, key, manifestPinned)) === pinned) {
      process.stdout.write(`${NOUN[kind]} ${id} is already ${word}\n`);
      return 0;
    }
    lock.check();
    await writePin(store, key, id, pinned, new Date());
    process.stdout.write(`${NOUN[kind]} ${id} ${word}\n`);
    return 0;
  });
}

function describePlan(kind: CatalogKind, plan: DeletePlan): string[] {
  const { entry } = plan;
  const lines = [
    `${NOUN[kind]} ${entry.id} (${entry.time}): ${entry.keys.length} objects, ${formatBytes(entry.bytes)}`,
  ];
  if (plan.kind === "delete" && plan.window) {
    const { restorableFrom, becomes, shortened } = plan.window;
    lines.push(
      shortened
        ? `point-in-time window SHORTENED: restorable since ${restorableFrom ?? "never"}, then ${becomes === null ? "nothing is restorable" : `only since ${becomes}`}`
        : `point-in-time window unchanged: restorable since ${restorableFrom}`,
    );
  }
  if (plan.kind === "delete" && plan.dependents) {
    const bytes = plan.dependents.reduce((s, d) => s + d.bytes, 0);
    lines.push(
      `with the ${plan.dependents.length} incremental backup${plan.dependents.length === 1 ? "" : "s"} that need${plan.dependents.length === 1 ? "s" : ""} it, deleted first (${formatBytes(bytes)}): ${plan.dependents.map((d) => d.id).join(", ")}`,
    );
  }
  if (kind === "backup")
    lines.push("WAL only this backup needed stays until 'pgha prune' deletes it");
  return lines;
}

/** delete: plan, print, and only with --confirm delete under the lock. */
export async function deleteCommand(
  kind: CatalogKind,
  ref: string,
  opts: Parameters<typeof loadContext>[0] & {
    confirm: boolean;
    allowShorterWindow?: boolean;
    withDependents?: boolean;
  },
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const { id } = await resolveId(store, config.cluster, kind, ref);
  const plan = async (): Promise<DeletePlan> => {
    const facts = await gatherPruneFacts(store, config.cluster, log);
    if (kind === "dump") {
      const entry = facts.dumps.find((d) => d.id === id);
      if (!entry) throw new RefusedError(`dump set ${id} cannot be read: it is left alone`);
      return planDumpDelete(entry);
    }
    const entry = facts.backups.find((b) => b.id === id);
    if (!entry) throw new RefusedError(`backup ${id} cannot be read: it is left alone`);
    return planBackupDelete(facts.backups, entry, {
      pitrWindow: config.retention.pitrWindow,
      now: new Date().toISOString(),
      ...(config.retention.zone !== undefined ? { zone: config.retention.zone } : {}),
      allowShorterWindow: opts.allowShorterWindow === true,
      withDependents: opts.withDependents === true,
    });
  };
  const show = (p: DeletePlan): void => {
    for (const line of describePlan(kind, p)) process.stdout.write(`${line}\n`);
    if (p.kind === "refused") throw new RefusedError(p.reason, p.hint);
  };
  if (!opts.confirm) {
    show(await plan());
    reportNote("nothing was deleted: add --confirm to delete it");
    return 0;
  }
  return withLock(store, config, log, kind, "delete", async (lock) => {
    const p = await plan(); // again under the lock: what the dry run saw may have changed
    show(p);
    const entries = [...(p.kind === "delete" ? (p.dependents ?? []) : []), p.entry];
    await deleteCatalogEntries(store, entries, log, lock);
    const freed = entries.reduce((s, e) => s + e.bytes, 0);
    reportNote(`deleted ${NOUN[kind]} ${id}, freed ${formatBytes(freed)}`);
    return 0;
  });
}
