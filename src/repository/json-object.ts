/**
 * JSON documents in the repository (manifests, drill reports, scheduler state): stored
 * uncompressed with content metadata, so every read is checked against its sha256.
 */
import { createHash } from "node:crypto";
import { AlreadyExistsError, IntegrityError, NotFoundError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { decodeContentMeta, encodeContentMeta } from "./object-meta.js";

/** Stores value under key. With ifAbsent, an existing key throws `exists()` instead. */
export async function putJson(
  store: ObjectStore,
  key: string,
  value: unknown,
  options: { ifAbsent?: boolean; exists?: () => Error } = {},
): Promise<void> {
  const body = Buffer.from(`${JSON.stringify(value, null, 1)}\n`);
  const sha256 = createHash("sha256").update(body).digest("hex");
  try {
    await store.put(key, body, {
      ...(options.ifAbsent ? { ifAbsent: true } : {}),
      metadata: encodeContentMeta({ sha256, rawSize: body.length, compression: "none" }),
    });
  } catch (error) {
    if (error instanceof AlreadyExistsError && options.exists) throw options.exists();
    throw error;
  }
}

/** Reads and verifies a JSON document; a missing key throws `missing()`. */
export async function getJson<T>(
  store: ObjectStore,
  key: string,
  missing: () => Error,
): Promise<T> {
  let got: Awaited<ReturnType<ObjectStore["get"]>>;
  try {
    got = await store.get(key);
  } catch (error) {
    if (error instanceof NotFoundError) throw missing();
    throw error;
  }
  const body = await readAll(got.body);
  if (
    createHash("sha256").update(body).digest("hex") !==
    decodeContentMeta(key, got.info.metadata).sha256
  ) {
    throw new IntegrityError(`${store.url}/${key} is corrupt (checksum mismatch)`);
  }
  try {
    return JSON.parse(body.toString("utf8")) as T;
  } catch (error) {
    // The checksum matches: it was stored like this (written by something else, or crafted).
    throw new IntegrityError(
      `${store.url}/${key} is corrupt: not valid JSON (${(error as Error).message})`,
    );
  }
}
