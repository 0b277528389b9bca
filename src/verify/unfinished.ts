/**
 * What verify says of objects no manifest accounts for: the objects of a backup or dump
 * set that has no manifest (it is being written, or it stopped before it wrote one: a
 * manifest is written last; a delete removes it first), and a local repository's files
 * of writes that died. No restore reads them, so they are warnings; they are named so
 * that "ok" is not said over space nothing can use. `pgha prune` deletes them, never while
 * a backup or dump runs (both take the cluster's lock), and files of dead writes once idle
 * for an hour. Whether a backup or dump runs now is read from its lock (never taken).
 */
import { formatBytes } from "../human-units.js";
import { LEFTOVER_IDLE_MS } from "../prune/plan-prune.js";
import { BACKUP_ID } from "../repository/backup-manifest.js";
import { backupsPrefix, clusterPrefix, dumpsPrefix } from "../repository/keys.js";
import { inspectLocks, type LockStatus } from "../repository/lock.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { Finding } from "./findings.js";

/** Files of an item that are not its data: a verify record, a pin. */
const SIDE_FILES = new Set(["verify.json", "pin.json"]);

export async function unfinishedFindings(
  store: ObjectStore,
  cluster: string,
  now: Date,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const [prefix, what, lockName] of [
    [backupsPrefix(cluster), "backup", "cluster"],
    [dumpsPrefix(cluster), "dump set", "dump"],
  ] as const) {
    const items = new Map<string, { objects: number; bytes: number; data: boolean }>();
    const manifests = new Set<string>();
    for await (const entry of store.list(prefix)) {
      const [id, ...rest] = entry.key.slice(prefix.length).split("/");
      if (id === undefined || !BACKUP_ID.test(id)) continue;
      const name = rest.join("/");
      if (name === "manifest.json") manifests.add(id);
      const item = items.get(id) ?? { objects: 0, bytes: 0, data: false };
      item.objects++;
      item.bytes += entry.size;
      if (!SIDE_FILES.has(name)) item.data = true;
      items.set(id, item);
    }
    const unfinished = [...items].filter(([id]) => !manifests.has(id));
    if (unfinished.length === 0) continue;
    const running = await runningHolder(store, cluster, lockName, now);
    for (const [id, item] of unfinished) {
      const held = `${item.objects} object${item.objects === 1 ? "" : "s"} (${formatBytes(item.bytes)}) and no manifest`;
      const why = !item.data
        ? "only a verify record or pin of one that was deleted"
        : running
          ? `${running} runs now, which most likely writes or deletes it`
          : "a run stopped before it finished, or a delete stopped half-way";
      findings.push({
        kind: "unfinished",
        severity: "warning",
        object: `${prefix}${id}/`,
        message: `${what} ${id} has ${held}: ${why}; no restore uses them, and pgha prune deletes them once no ${what === "backup" ? "backup" : "dump"} runs`,
      });
    }
  }
  const before = new Date(now.getTime() - LEFTOVER_IDLE_MS);
  const leftovers = (await store.listLeftovers?.(clusterPrefix(cluster), before)) ?? [];
  if (leftovers.length > 0) {
    const bytes = leftovers.reduce((s, l) => s + l.size, 0);
    findings.push({
      kind: "unfinished",
      severity: "warning",
      object: leftovers[0]?.path ?? clusterPrefix(cluster),
      message: `${leftovers.length} file${leftovers.length === 1 ? "" : "s"} of writes that never finished (${formatBytes(bytes)}, idle for an hour or more; first: ${leftovers[0]?.path}): no restore uses them, and pgha prune deletes them`,
    });
  }
  return findings;
}

/** Who holds the lock, when someone live does ("a backup (db1, pid 123)"); else undefined. */
async function runningHolder(
  store: ObjectStore,
  cluster: string,
  lockName: string,
  now: Date,
): Promise<string | undefined> {
  const [lock]: LockStatus[] = await inspectLocks(store, cluster, now, [lockName]).catch(() => []);
  if (lock?.record === undefined || (lock.state !== "running" && lock.state !== "held"))
    return undefined;
  const { purpose, host, pid } = lock.record;
  const where = [host, pid === undefined ? undefined : `pid ${pid}`].filter((w) => w !== undefined);
  return `a ${purpose}${where.length > 0 ? ` (${where.join(", ")})` : ""}`;
}
