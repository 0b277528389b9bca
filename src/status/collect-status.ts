/**
 * The statuses of the clusters asked for (I/O): status, metrics and the scheduler's
 * metrics endpoint all go through here, so they report the same thing.
 */
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import { holdsCluster, listClusters, notHeldError } from "../repository/clusters.js";
import type { ObjectStore } from "../storage/object-store.js";
import { gatherClusterFacts, gatherServerFacts } from "./gather-status.js";
import {
  type ClusterFacts,
  type ClusterStatus,
  planStatus,
  type Thresholds,
} from "./plan-status.js";

export interface CollectOptions {
  /** Every cluster of the repository, or only config.cluster. */
  allClusters: boolean;
  /** Ask the server (config.pgConn, config.pgdata) about config.cluster's archiving. */
  askServer: boolean;
  thresholds?: Thresholds;
  now: () => number;
}

export interface Collected {
  facts: ClusterFacts[];
  statuses: ClusterStatus[];
}

export async function collectStatuses(
  store: ObjectStore,
  config: Config,
  log: Logger,
  options: CollectOptions,
): Promise<Collected> {
  let clusters: string[];
  if (options.allClusters) clusters = await listClusters(store);
  else {
    clusters = [config.cluster];
    // An empty repository is an answer (nothing archived yet); a name it does not hold,
    // among others, is a typo.
    if (!(await holdsCluster(store, config.cluster))) {
      const held = await listClusters(store);
      if (held.length > 0) throw notHeldError(store, config.cluster, held);
    }
  }
  const facts: ClusterFacts[] = [];
  for (const cluster of clusters) {
    const gathered = await gatherClusterFacts(store, cluster, log);
    if (options.askServer && cluster === config.cluster)
      gathered.server = await gatherServerFacts(config.pgConn, config.pgdata);
    facts.push(gathered);
  }
  const now = options.now();
  return { facts, statuses: facts.map((f) => planStatus(f, now, options.thresholds)) };
}
