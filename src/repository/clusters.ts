/**
 * Which clusters a repository holds: a cluster exists once any object lives under its
 * prefix (identity, WAL, a backup, a dump set). Listed by skipping from one cluster's
 * prefix to the next (one listing request per cluster, not one per object).
 */
import { NotFoundInRepoError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { getJson } from "./json-object.js";
import type { JsonStreamOptions } from "./json-stream.js";
import { CLUSTERS_PREFIX, clusterPrefix } from "./keys.js";

/** The cluster names, sorted. */
export async function listClusters(store: ObjectStore): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const listing = store.list(CLUSTERS_PREFIX, after === undefined ? undefined : { after });
    const first = await listing[Symbol.asyncIterator]().next();
    if (first.done) return names.sort();
    const name = first.value.key.slice(CLUSTERS_PREFIX.length).split("/")[0] ?? "";
    names.push(name);
    // '0' sorts right after '/': every key of this cluster is below `<prefix><name>0`,
    // every key of the next cluster above it.
    after = `${CLUSTERS_PREFIX}${name}0`;
  }
}

export async function holdsCluster(store: ObjectStore, cluster: string): Promise<boolean> {
  const first = await store.list(clusterPrefix(cluster))[Symbol.asyncIterator]().next();
  return first.done !== true;
}

/** The error for a cluster name the repository does not hold, or undefined when it does. */
export async function unknownClusterError(
  store: ObjectStore,
  cluster: string,
): Promise<NotFoundInRepoError | undefined> {
  if (await holdsCluster(store, cluster)) return undefined;
  return notHeldError(store, cluster, await listClusters(store));
}

/** `cluster` is not one of `clusters`, the ones the repository holds. */
export function notHeldError(
  store: ObjectStore,
  cluster: string,
  clusters: readonly string[],
): NotFoundInRepoError {
  return new NotFoundInRepoError(
    `${store.url} holds no cluster '${cluster}'`,
    clusters.length === 0
      ? "the repository is empty: archive WAL or take a backup first (is --repo right?)"
      : `its clusters: ${clusters.join(", ")} (choose one with --cluster)`,
  );
}

/**
 * A catalog object (a manifest) of a cluster; when it is missing because the repository
 * does not hold the cluster at all, that is what the error says.
 */
export async function getClusterJson<T>(
  store: ObjectStore,
  cluster: string,
  key: string,
  missing: () => NotFoundInRepoError,
  options?: JsonStreamOptions,
): Promise<T> {
  try {
    return await getJson<T>(store, key, missing, options);
  } catch (error) {
    if (error instanceof NotFoundInRepoError)
      throw (await unknownClusterError(store, cluster)) ?? error;
    throw error;
  }
}
