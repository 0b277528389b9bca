/**
 * What verify says of objects no manifest accounts for: the objects of a backup or dump
 * set that has no manifest (it is still running, or it stopped before it wrote one: a
 * manifest is written last; a prune deletes it first), and a local repository's files of writes that died. No
 * restore reads them, so they are warnings; they are named so that "ok" is not said over
 * space nothing can use. `pgha prune` deletes them, never while a backup or dump runs
 * (both take the cluster's lock), and files of dead writes once idle for an hour.
 */
import { formatBytes } from "../human-units.js";
import { LEFTOVER_IDLE_MS } from "../prune/plan-prune.js";
import { BACKUP_ID } from "../repository/backup-manifest.js";
import { backupsPrefix, clusterPrefix, dumpsPrefix } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { Finding } from "./findings.js";

export async function unfinishedFindings(
  store: ObjectStore,
  cluster: string,
  now: Date,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const [prefix, what] of [
    [backupsPrefix(cluster), "backup"],
    [dumpsPrefix(cluster), "dump set"],
  ] as const) {
    const items = new Map<string, { objects: number; bytes: number; manifest: boolean }>();
    for await (const entry of store.list(prefix)) {
      const [id, ...rest] = entry.key.slice(prefix.length).split("/");
      if (id === undefined || !BACKUP_ID.test(id)) continue;
      const item = items.get(id) ?? { objects: 0, bytes: 0, manifest: false };
      item.objects++;
      item.bytes += entry.size;
      if (rest.join("/") === "manifest.json") item.manifest = true;
      items.set(id, item);
    }
    for (const [id, item] of items) {
      if (item.manifest) continue;
      findings.push({
        kind: "unfinished",
        severity: "warning",
        object: `${prefix}${id}/`,
        message: `${what} ${id} has ${item.objects} object${item.objects === 1 ? "" : "s"} (${formatBytes(item.bytes)}) and no manifest: it is being written or deleted now, or a run stopped before it finished; no restore uses them, and pgha prune deletes them once no ${what === "backup" ? "backup" : "dump"} runs`,
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
