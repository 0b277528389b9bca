/**
 * Pins set after the fact: `pgha backup pin|unpin` (and the same for dump sets) write a
 * small record beside the manifest (backups/<id>/pin.json, dumps/<id>/pin.json) instead of
 * rewriting the checksummed manifest. The record, when present, decides; else the
 * manifest's `pinned` (set by `--pin` when the backup was taken). Deleted with the item.
 */
import { IntegrityError, NotFoundInRepoError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { getJson, putJson } from "./json-object.js";

export interface PinRecord {
  format: 1;
  kind: "pin";
  /** The backup or dump-set id. */
  id: string;
  pinned: boolean;
  /** When it was pinned or unpinned. */
  time: string;
}

export async function writePin(
  store: ObjectStore,
  key: string,
  id: string,
  pinned: boolean,
  now: Date,
): Promise<void> {
  const record: PinRecord = { format: 1, kind: "pin", id, pinned, time: now.toISOString() };
  await putJson(store, key, record);
}

/**
 * The record's pinned, or undefined without a record. A damaged record counts as pinned:
 * a pin that cannot be read must not let prune delete the item.
 */
export async function readPin(store: ObjectStore, key: string): Promise<boolean | undefined> {
  try {
    const record = await getJson<PinRecord>(
      store,
      key,
      () => new NotFoundInRepoError(`${key} does not exist`),
    );
    if (typeof record !== "object" || record === null || record.kind !== "pin") return true;
    return record.pinned === true;
  } catch (error) {
    if (error instanceof NotFoundInRepoError) return undefined;
    if (error instanceof IntegrityError) return true;
    throw error;
  }
}

/** Whether an item is pinned: its pin record, else its manifest. */
export async function isPinned(
  store: ObjectStore,
  key: string,
  manifestPinned: boolean,
): Promise<boolean> {
  return (await readPin(store, key)) ?? manifestPinned;
}

/** The manifest with `pinned` as its pin record says. */
export async function withPin<M extends { pinned: boolean }>(
  store: ObjectStore,
  key: string,
  manifest: M,
): Promise<M> {
  const pinned = await isPinned(store, key, manifest.pinned);
  return pinned === manifest.pinned ? manifest : { ...manifest, pinned };
}
