/** ensureMarker (repository/encryption-marker.ts): the refusal of a repository of unencrypted objects. */
import { describe, expect, it } from "vitest";
import { RefusedError } from "../../src/errors.js";
import {
  type EncryptionMarker,
  encodeMarker,
  ensureMarker,
} from "../../src/repository/encryption-marker.js";
import { ENCRYPTION_MARKER_KEY } from "../../src/repository/keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import type * as Store from "../../src/storage/object-store.js";

const WAL = "v1/clusters/main/wal/0000000100000000/000000010000000000000001";
const marker: EncryptionMarker = {
  format: 1,
  kind: "encryption",
  scheme: "age",
  mode: "keys",
  recipients: [`age1${"q".repeat(58)}`],
  createdAt: "2026-12-02T00:00:00.000Z",
  updatedAt: "2026-12-02T00:00:00.000Z",
};

describe("ensureMarker", () => {
  it("refuses a repository that holds unencrypted objects", async () => {
    const store = new MemoryStore();
    await store.put(WAL, Buffer.from("plain"));
    await expect(ensureMarker(store, "keys", ["age1b"], new Date())).rejects.toBeInstanceOf(
      RefusedError,
    );
  });

  it("takes the marker another encrypted writer put between its two reads (a first push beside a backup)", async () => {
    const store = new MemoryStore();
    // The marker is missing at the first read; then another writer marks the repository
    // and stores its first object, before this one lists.
    const list = store.list.bind(store);
    let raced = false;
    store.list = (prefix: string, options?: Store.ListOptions) => {
      if (raced) return list(prefix, options);
      raced = true;
      return (async function* () {
        await store.put(ENCRYPTION_MARKER_KEY, encodeMarker(marker), { ifAbsent: true });
        await store.put(WAL, Buffer.from("age-encryption.org/v1 ..."));
        yield* list(prefix, options);
      })();
    };
    const got = await ensureMarker(store, "keys", ["age1b"], new Date());
    expect(got.recipients).toEqual(marker.recipients);
  });
});
