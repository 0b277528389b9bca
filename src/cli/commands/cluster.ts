/** pgha cluster list and pgha cluster delete: the clusters a repository holds. */
import {
  type ClusterSummary,
  planClusterDelete,
  summarizeCluster,
} from "../../catalog/cluster-summary.js";
import type { OptionsOf } from "../../config/flags.js";
import { RefusedError } from "../../errors.js";
import { deleteKeys } from "../../prune/apply-prune.js";
import { holdsCluster, listClusters, notHeldError } from "../../repository/clusters.js";
import { clusterPrefix } from "../../repository/keys.js";
import { acquireLock, type HeldLock, inspectLocks, LOCK_NAMES } from "../../repository/lock.js";
import type { ListEntry, ObjectStore } from "../../storage/object-store.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { reportNote } from "../report.js";
import { formatBytes, renderTable } from "../table.js";

async function listAll(store: ObjectStore, cluster: string): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for await (const entry of store.list(clusterPrefix(cluster))) out.push(entry);
  return out;
}

const ROW_HEADERS = ["cluster", "backups", "dumps", "wal", "size", "last archived"];

function row(s: ClusterSummary): string[] {
  return [
    s.cluster,
    String(s.backups),
    String(s.dumps),
    `${s.walFiles} (${formatBytes(s.walBytes)})`,
    formatBytes(s.bytes),
    s.lastArchivedWal === null
      ? "-"
      : `${s.lastArchivedWal}${s.lastArchivedTime === null ? "" : ` at ${s.lastArchivedTime}`}`,
  ];
}

export async function clusterListCommand(opts: OptionsOf<"cluster list">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const summaries: ClusterSummary[] = [];
  for (const cluster of await listClusters(store))
    summaries.push(summarizeCluster(cluster, await listAll(store, cluster)));
  if (opts.json) process.stdout.write(`${JSON.stringify(summaries, null, 2)}\n`);
  else if (summaries.length === 0) process.stdout.write(`no clusters in ${store.url}\n`);
  else process.stdout.write(renderTable(ROW_HEADERS, summaries.map(row)));
  return 0;
}

export async function clusterDeleteCommand(
  name: string,
  opts: OptionsOf<"cluster delete">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  if (!(await holdsCluster(store, name)))
    throw notHeldError(store, name, await listClusters(store));
  const held: HeldLock[] = [];
  // The locks this run took do not count against it.
  const plan = async () =>
    planClusterDelete(
      name,
      await listAll(store, name),
      (await inspectLocks(store, name, new Date())).filter(
        (l) => !held.some((h) => h.record.owner === l.record?.owner),
      ),
    );
  const show = (p: Awaited<ReturnType<typeof plan>>) => {
    const s = p.summary;
    process.stdout.write(
      `cluster '${name}' in ${store.url}: ${s.objects} objects, ${formatBytes(s.bytes)} (${s.backups} backups, ${s.dumps} dump sets, ${s.walFiles} WAL files)\n`,
    );
    if (p.kind === "refused") throw new RefusedError(p.reason, p.hint);
  };
  if (!opts.confirm) {
    show(await plan());
    reportNote("nothing was deleted: add --confirm to delete every object of this cluster");
    return 0;
  }
  const first = await plan();
  show(first);
  // Both locks: no backup, dump or prune of this cluster runs while it is deleted.
  const lockOptions = { ttlMs: 5 * 60_000, now: () => new Date(), log, purpose: "cluster delete" };
  const guard = {
    check() {
      for (const lock of held) lock.check();
    },
  };
  try {
    for (const lockName of LOCK_NAMES)
      held.push(await acquireLock(store, name, { ...lockOptions, name: lockName }));
    const p = await plan();
    if (p.kind === "refused") throw new RefusedError(p.reason, p.hint);
    await deleteKeys(store, p.keys, guard);
    for (const leftover of (await store.listLeftovers?.(clusterPrefix(name), new Date())) ?? []) {
      guard.check();
      await store.deleteLeftover?.(leftover);
    }
    reportNote(
      `deleted cluster '${name}': ${p.keys.length} objects, ${formatBytes(p.summary.bytes)}`,
    );
    return 0;
  } finally {
    for (const lock of held.reverse()) await lock.release().catch(() => undefined);
  }
}
