/**
 * A body that breaks off (a connection reset) is the store's failure, never the data's:
 * verify's digest and the restore facts' history read retry it within the budget, and
 * past it fail as storage (exit 7), not as a corrupt object or a silent hang.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { compressBuffer } from "../../src/compress/codec.js";
import { StorageError } from "../../src/errors.js";
import { walKey } from "../../src/repository/keys.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { gatherArchiveFacts } from "../../src/restore/facts.js";
import type { MemoryStore } from "../../src/storage/memory.js";
import { addRetries } from "../../src/storage/retrying-store.js";
import { readDigest } from "../../src/verify/read-digest.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { BreakingStore, fakeClockPolicy } from "../helpers/breaking-store.js";

const raw = Buffer.alloc(200_000, 7);

async function stored(store: MemoryStore, key: string) {
  const data = await compressBuffer({ algorithm: "zstd", level: 3 }, raw);
  await store.put(key, data);
}

describe("verify's digest of an object whose body breaks off", () => {
  it("is read again, and past the budget is a storage failure, not an undecodable object", async () => {
    const once = new BreakingStore(1, 1000, "at-once");
    await stored(once, "o");
    const digest = await readDigest(addRetries(once, fakeClockPolicy(60_000)), "o", "zstd");
    expect(digest).toMatchObject({ raw: { size: raw.length } });
    expect(once.gets).toBe(2);
    const always = new BreakingStore(1000, 1000, "at-once");
    await stored(always, "o");
    const failed = await readDigest(addRetries(always, fakeClockPolicy(3_000)), "o", "zstd").catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(StorageError);
    expect((failed as StorageError).transient).toBe(true);
  });
});

describe("verify's digest of an object that goes while it is read", () => {
  it("is missing, not undecodable", async () => {
    const gone = new BreakingStore(1, 1000);
    await stored(gone, "o");
    gone.beforeGet = async (n, key) => {
      if (n === 2) await gone.delete(key);
    };
    expect(await readDigest(addRetries(gone, fakeClockPolicy(60_000)), "o", "zstd")).toBe(
      "missing",
    );
  });
});

describe("the restore facts' read of a history file whose body breaks off", () => {
  it("is read again (it hung before: exit 13 with no word), and past the budget fails as storage", async () => {
    const history = Buffer.from("1\t0/3000000\tno recovery target specified\n");
    const file = parseWalFileName("00000002.history");
    if (!file) throw new Error("name");
    const put = async (store: MemoryStore) =>
      store.put(
        walKey("main", file),
        await compressBuffer({ algorithm: "zstd", level: 3 }, history),
        {
          metadata: encodeWalMeta(
            {
              sha256: createHash("sha256").update(history).digest("hex"),
              rawSize: history.length,
              compression: "zstd",
            },
            new Date("2026-12-01T12:00:00Z"),
          ),
        },
      );
    const once = new BreakingStore(1, 0, "at-once");
    await put(once);
    const facts = await gatherArchiveFacts(addRetries(once, fakeClockPolicy(60_000)), "main", []);
    expect(facts.histories.get(2)).toBe(history.toString());
    const always = new BreakingStore(1000, 0, "at-once");
    await put(always);
    await expect(
      gatherArchiveFacts(addRetries(always, fakeClockPolicy(3_000)), "main", []),
    ).rejects.toBeInstanceOf(StorageError);
  });
});
