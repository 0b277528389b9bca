/** Prune with WAL under content-addressed names (FORMAT.md): they go with their WAL name. */
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../../src/log.js";
import { applyPrune } from "../../src/prune/apply-prune.js";
import { gatherPruneFacts, planPrune } from "../../src/prune/plan-prune.js";
import { writeBackupManifest } from "../../src/repository/backup-manifest.js";
import { identityKey, walKey, walVersionKey } from "../../src/repository/keys.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;
const file = (n: number) => parseWalFileName(seg(n)) ?? (undefined as never);
const sha = (c: string) => c.repeat(64);

describe("prune with content-addressed WAL names", () => {
  it("deletes every object of a pruned WAL name, in either layout, and keeps those of kept names", async () => {
    const store = new MemoryStore("s3rver-like", { ignoreIfAbsent: true });
    await store.put(
      identityKey("main"),
      Buffer.from(JSON.stringify({ systemIdentifier: "1", walSegmentSize: 16 << 20 })),
    );
    for (const [id, time, n] of [
      ["20261101T000000Z", "2026-11-01T00:00:00Z", 2],
      ["20261120T000000Z", "2026-11-20T00:00:00Z", 6],
    ] as const) {
      await writeBackupManifest(
        store,
        makeBackupManifest({
          id,
          startLsn: "0/0",
          stopLsn: "0/0",
          startWal: seg(n),
          stopWal: seg(n),
          startTime: time,
          stopTime: time,
        }),
      );
    }
    // Segment 1: plain key (an older pgha); 2: two contents (a conflict); 3..7: one each.
    await store.put(walKey("main", file(1)), Buffer.alloc(10));
    await store.put(walVersionKey("main", file(2), sha("a")), Buffer.alloc(10));
    await store.put(walVersionKey("main", file(2), sha("b")), Buffer.alloc(10));
    for (let n = 3; n <= 7; n++) {
      await store.put(walVersionKey("main", file(n), sha("c")), Buffer.alloc(10));
    }
    const facts = await gatherPruneFacts(store, "main", memoryLogger());
    // Keep only the newer backup: WAL before its start segment (6) goes.
    const plan = planPrune(facts, { last: 1 }, "1d", "2026-11-21T00:00:00Z");
    expect(plan.deleteBackups.map((b) => b.id)).toEqual(["20261101T000000Z"]);
    expect(plan.deleteWal.map((w) => w.key).sort()).toEqual(
      [
        walKey("main", file(1)),
        walVersionKey("main", file(2), sha("a")),
        walVersionKey("main", file(2), sha("b")),
        walVersionKey("main", file(3), sha("c")),
        walVersionKey("main", file(4), sha("c")),
        walVersionKey("main", file(5), sha("c")),
      ].sort(),
    );
    await applyPrune(store, plan, memoryLogger(), { check() {} });
    const left: string[] = [];
    for await (const entry of store.list("v1/clusters/main/wal/")) left.push(entry.key);
    expect(left).toEqual([
      walVersionKey("main", file(6), sha("c")),
      walVersionKey("main", file(7), sha("c")),
    ]);
  });
});
