/**
 * The result of the last `pgha verify` that checked a backup or dump set, stored beside
 * its manifest (backups/<id>/verify.json, dumps/<id>/verify.json): replaced by each run,
 * deleted with the backup or dump set. `backup list` shows it.
 */
import { IntegrityError, NotFoundInRepoError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { getJson, putJson } from "./json-object.js";
import { backupVerifyKey } from "./keys.js";

export interface VerifyRecord {
  format: 1;
  kind: "verify";
  /** The backup or dump-set id. */
  id: string;
  /** When the run that checked it ended. */
  time: string;
  /** No finding of severity error concerns it, nor the data of a backup of its chain. */
  ok: boolean;
  /** Objects its manifest lists (all checked for presence and size). */
  objects: number;
  /** Of those, the ones read and hashed (fewer under --sample). */
  hashed: number;
  /** Backups: whether its WAL from its start to its end is archived. */
  restorable?: boolean;
  /**
   * Backups: no error in its own manifest or objects, nor in a backup of its chain's:
   * what a backup built on it inherits (its own WAL is not: an increment's restore
   * replays the increment's WAL only). Absent in records written before: `ok` says it.
   */
  dataOk?: boolean;
  /** The findings' messages. */
  findings: string[];
}

export async function writeVerifyRecord(
  store: ObjectStore,
  key: string,
  record: VerifyRecord,
): Promise<void> {
  await putJson(store, key, record);
}

/** The record, or undefined when the item was never verified or its record is unreadable. */
export async function readVerifyRecord(
  store: ObjectStore,
  key: string,
): Promise<VerifyRecord | undefined> {
  try {
    const record = await getJson<VerifyRecord>(
      store,
      key,
      () => new NotFoundInRepoError(`${key} does not exist`),
    );
    const shaped =
      typeof record === "object" &&
      record !== null &&
      record.kind === "verify" &&
      typeof record.time === "string" &&
      typeof record.ok === "boolean";
    return shaped ? record : undefined;
  } catch (error) {
    // Not verified yet, or a damaged record: either way it says nothing; a failing store does.
    if (error instanceof NotFoundInRepoError || error instanceof IntegrityError) return undefined;
    throw error;
  }
}

/**
 * Whether the record says the backup's data failed: its manifest, its objects or its
 * chain's, what a backup built on it or restored with it inherits (`dataOk`, or `ok` in
 * records written before it).
 */
export function dataFailed(record: VerifyRecord | undefined): boolean {
  return record !== undefined && (record.dataOk ?? record.ok) === false;
}

/**
 * Which of `ids` the last `pgha verify` of each found failed. `data`: only those whose
 * data failed (dataFailed), for the members of a chain: a backup built on one, or
 * restored with one, is no better; their own WAL is not its WAL.
 */
export async function readFailedVerifies(
  store: ObjectStore,
  cluster: string,
  ids: readonly string[],
  which: "any" | "data",
): Promise<Set<string>> {
  const failed = new Set<string>();
  for (const id of ids) {
    const record = await readVerifyRecord(store, backupVerifyKey(cluster, id));
    if (which === "data" ? dataFailed(record) : record?.ok === false) failed.add(id);
  }
  return failed;
}
