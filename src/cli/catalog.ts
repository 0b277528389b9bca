/**
 * `list` and `info` of a catalog (base backups, dump sets): the same shape for both. A
 * listed item that cannot be read is reported and left out, not fatal to the list.
 */
import type { Config } from "../config/load.js";
import type { SettingFlags } from "../config/options.js";
import { leftOutWhenUnread } from "../errors.js";
import type { Logger } from "../log.js";
import { holdsCluster, listClusters, notHeldError } from "../repository/clusters.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openStore } from "../storage/open-store.js";
import { loadContext } from "./context.js";
import { renderTable } from "./table.js";

export interface Catalog<M, X = undefined> {
  /** "backup", "dump set": for messages. */
  noun: string;
  plural: string;
  listIds(store: ObjectStore, cluster: string): Promise<string[]>;
  read(store: ObjectStore, cluster: string, id: string): Promise<M>;
  /** An id or "latest". */
  resolve(store: ObjectStore, cluster: string, ref: string): Promise<M>;
  /** What --json prints per item: a stable shape for scripts (list adds what annotate says). */
  summarize(item: M, extra?: X): unknown;
  listColumns: string[];
  listRow(item: M, extra?: X): string[];
  /**
   * What `list` adds to each item from the rest of the repository (backup list: whether
   * it can be restored, when it was last verified).
   */
  annotate?(store: ObjectStore, cluster: string, items: M[]): Promise<(item: M) => X>;
  /** What info --json adds to the summary. */
  infoJson?(item: M): Record<string, unknown>;
  infoRows(item: M): [string, string][];
}

export interface CatalogContext {
  config: Config;
  log: Logger;
  store: ObjectStore;
  json: boolean;
}

/** The repository, for a list or info command. */
export async function openCatalog(opts: {
  settings: SettingFlags;
  json?: boolean | undefined;
}): Promise<CatalogContext> {
  const { config, log } = loadContext(opts);
  return { config, log, store: await openStore(config, log), json: opts.json === true };
}

/** Reads every listed item; an unreadable one is reported and left out. */
export async function readEach<T>(
  ids: string[],
  read: (id: string) => Promise<T>,
  what: string,
  log: Logger,
): Promise<T[]> {
  const items: T[] = [];
  for (const id of ids) {
    try {
      items.push(await read(id));
    } catch (error) {
      // The wrong identity or no encryption settings: every item would fail alike; the
      // storage failing: the list would not be what the repository holds.
      if (!leftOutWhenUnread(error)) throw error;
      log.error(`${what} ${id} is not listed: ${(error as Error).message}`);
    }
  }
  return items;
}

export async function printCatalogList<M, X>(catalog: Catalog<M, X>, ctx: CatalogContext) {
  const { store, config } = ctx;
  const ids = await catalog.listIds(store, config.cluster);
  // An empty list is an answer for a cluster the repository holds, or for a repository
  // that holds none yet; a name that is not one of its clusters is a typo, not empty.
  if (ids.length === 0 && !(await holdsCluster(store, config.cluster))) {
    const clusters = await listClusters(store);
    if (clusters.length > 0) throw notHeldError(store, config.cluster, clusters);
  }
  const items = await readEach(
    ids,
    (id) => catalog.read(store, config.cluster, id),
    catalog.noun,
    ctx.log,
  );
  const extra =
    items.length > 0 ? await catalog.annotate?.(store, config.cluster, items) : undefined;
  if (ctx.json) {
    const summaries = items.map((item) => catalog.summarize(item, extra?.(item)));
    process.stdout.write(`${JSON.stringify(summaries, null, 2)}\n`);
  } else if (items.length === 0) {
    process.stdout.write(`no ${catalog.plural} of cluster '${config.cluster}' in ${store.url}\n`);
  } else {
    const rows = items.map((item) => catalog.listRow(item, extra?.(item)));
    process.stdout.write(renderTable(catalog.listColumns, rows));
  }
  return 0;
}

export async function printCatalogInfo<M, X>(
  catalog: Catalog<M, X>,
  ctx: CatalogContext,
  ref: string,
) {
  const item = await catalog.resolve(ctx.store, ctx.config.cluster, ref);
  if (ctx.json) {
    const json = { ...(catalog.summarize(item) as object), ...catalog.infoJson?.(item) };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(["", ""], catalog.infoRows(item), false));
  }
  return 0;
}
