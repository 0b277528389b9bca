/** Restore drill reports: one JSON object per drill, written when the drill ends. */
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { putJson } from "./json-object.js";
import { drillKey, drillsPrefix } from "./keys.js";

export interface DrillCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface DrillReport {
  format: 1;
  kind: "drill";
  id: string;
  cluster: string;
  passed: boolean;
  startedAt: string;
  finishedAt: string;
  target: string;
  backup: string | null;
  /** Milliseconds per phase. */
  phases: {
    plan: number;
    fetch: number;
    start: number;
    replay: number;
    checks: number;
    total: number;
  };
  lastReplayedCommit: string | null;
  checks: DrillCheck[];
  error: string | null;
}

export async function writeDrillReport(store: ObjectStore, report: DrillReport): Promise<void> {
  await putJson(store, drillKey(report.cluster, report.id), report);
}

export async function listDrillReports(
  store: ObjectStore,
  cluster: string,
): Promise<DrillReport[]> {
  const reports: DrillReport[] = [];
  for await (const entry of store.list(drillsPrefix(cluster))) {
    if (!entry.key.endsWith(".json")) continue;
    const { body } = await store.get(entry.key);
    try {
      reports.push(JSON.parse((await readAll(body)).toString("utf8")) as DrillReport);
    } catch {
      // A damaged report is skipped; the drill itself is long over.
    }
  }
  return reports.sort((a, b) => a.id.localeCompare(b.id));
}
