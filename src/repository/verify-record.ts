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
 * Which of `ids` the last `pgha verify` of each found failed (their records say ok false):
 * a backup built on one, or restored with one, is no better.
 */
export async function readFailedVerifies(
  store: ObjectStore,
  cluster: string,
  ids: readonly string[],
): Promise<Set<string>> {
  const failed = new Set<string>();
  for (const id of ids) {
    const record = await readVerifyRecord(store, backupVerifyKey(cluster, id));
    if (record?.ok === false) failed.add(id);
  }
  return failed;
}
