/**
 * Repository format v1: the ONLY place that builds object keys. See FORMAT.md.
 *
 *   v1/clusters/<cluster>/identity.json
 *   v1/clusters/<cluster>/wal/<timeline+log, 16 hex>/<segment | .partial | .backup file>
 *   v1/clusters/<cluster>/wal/history/<timeline>.history
 */
import type { WalFileName } from "../wal/names.js";

export const FORMAT_VERSION = 1;
const ROOT = `v${FORMAT_VERSION}`;

export function clusterPrefix(cluster: string): string {
  return `${ROOT}/clusters/${cluster}/`;
}

export function identityKey(cluster: string): string {
  return `${clusterPrefix(cluster)}identity.json`;
}

export function walPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}wal/`;
}

export function walKey(cluster: string, file: WalFileName): string {
  if (file.kind === "history") return `${walPrefix(cluster)}history/${file.name}`;
  // Grouping by timeline+log keeps local directories small (256 files at 16 MiB) and
  // lets later code list or prune one timeline range at a time.
  return `${walPrefix(cluster)}${file.segment?.slice(0, 16)}/${file.name}`;
}
