/** planAssembly and planDelta (issue 14, points 2 and 4): which bytes come from where. */
import { describe, expect, it } from "vitest";
import { planAssembly } from "../../src/backup/assembly-plan.js";
import { filesOf } from "../../src/backup/chain-manifest.js";
import { planDelta } from "../../src/backup/delta-plan.js";
import { IntegrityError } from "../../src/errors.js";
import type { BackupManifest } from "../../src/repository/backup-manifest.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { BLOCK, storeChain, threeSnapshots } from "../helpers/chain-builder.js";

async function chain(): Promise<BackupManifest[]> {
  return storeChain(new MemoryStore(), threeSnapshots());
}

/** Member `at`'s planned entries of part base, from all its objects. */
const entriesOf = (members: ReturnType<typeof planAssembly>["members"], at: number) =>
  Object.fromEntries(
    (members[at]?.byObject ?? [])
      .filter((_, i) => members[at]?.manifest.objects[i]?.part === "base")
      .flatMap((entries) => [...entries]),
  );

describe("planAssembly", () => {
  it("takes each block from the backup the target's map names, and skips superseded blocks", async () => {
    const members = await chain();
    const plan = planAssembly(members);
    const [full, incr1, incr2] = [0, 1, 2].map((at) => entriesOf(plan.members, at));
    // base/1/100: block 0 from the full; block 1 changed in incr 1 and again in incr 2.
    expect(full?.["base/1/100"]).toMatchObject({
      how: "blocks",
      delta: false,
      blocks: Uint32Array.of(0),
    });
    expect(incr2?.["base/1/100"]).toMatchObject({
      how: "blocks",
      delta: true,
      blocks: Uint32Array.of(1, 2),
    });
    expect(incr1?.["base/1/100"]).toBeUndefined();
    // base/1/200 grew in incr 1, then shrank to its first block: only the full's block 0.
    expect(full?.["base/1/200"]).toMatchObject({
      how: "blocks",
      size: BLOCK,
      blocks: Uint32Array.of(0),
    });
    expect(incr1?.["base/1/200"]).toBeUndefined();
    // Unchanged since the full: streamed whole from it, checked by its sha256.
    expect(full?.["global/pg_control"]).toEqual({ how: "whole", mode: 0o600 });
    expect(full?.PG_VERSION).toEqual({ how: "whole", mode: 0o600 });
    expect(incr2?.["postgresql.conf"]).toEqual({ how: "whole", mode: 0o600 });
    expect(full?.["postgresql.conf"]).toBeUndefined();
    // Created in incr 1 and deleted in incr 2: read from no backup.
    for (const at of [0, 1, 2]) expect(entriesOf(plan.members, at)["base/1/300"]).toBeUndefined();
    // Created empty: made at size 0, nothing read.
    expect(plan.find("base", "base/1/400")).toMatchObject({ write: "blocks", blocks: 0 });
    expect(plan.members.map((m) => m.structure)).toEqual([false, false, true]);
    expect(plan.files.length).toBe(filesOf(members[2] as BackupManifest).length);
    expect(plan.written).toBe(6);
  });

  it("restores an intermediate backup of the chain from its own map", async () => {
    const members = (await chain()).slice(0, 2);
    const plan = planAssembly(members);
    expect(entriesOf(plan.members, 1)["base/1/100"]).toMatchObject({ blocks: Uint32Array.of(1) });
    expect(entriesOf(plan.members, 0)["base/1/100"]).toMatchObject({
      blocks: Uint32Array.of(0, 2),
    });
    expect(entriesOf(plan.members, 1)["base/1/200"]).toMatchObject({
      delta: true,
      blocks: Uint32Array.of(2),
    });
    expect(entriesOf(plan.members, 1)["base/1/300"]).toEqual({ how: "whole", mode: 0o600 });
  });

  it("refuses a map that names a backup past the chain or one without the file", async () => {
    const members = await chain();
    const target = members[2] as BackupManifest;
    const broken = structuredClone(target);
    const file = filesOf(broken).find((f) => f.path === "base/1/100");
    if (!file?.blocks) throw new Error("test chain has no map");
    file.blocks.from = Buffer.from([0, 2, 7]).toString("base64");
    expect(() =>
      planAssembly([members[0] as BackupManifest, members[1] as BackupManifest, broken]),
    ).toThrow(IntegrityError);
    // Block 1 from incr 1, whose manifest (altered) no longer has the file.
    file.blocks.from = Buffer.from([0, 1, 2]).toString("base64");
    const without = structuredClone(members[1] as BackupManifest);
    without.files = without.files.filter((f) => f.path !== "base/1/100");
    expect(() => planAssembly([members[0] as BackupManifest, without, broken])).toThrow(
      /names backup 20261122T000000Z, which does not have the file/,
    );
  });

  it("gives each object the entries it holds, or its part's where the manifest does not say", async () => {
    const members = await chain();
    const plan = planAssembly(members);
    // The builder's objects: the first half of the files, then the rest.
    const [first, second] = plan.members[0]?.byObject ?? [];
    expect(first?.has("PG_VERSION")).toBe(true);
    expect(first?.has("global/pg_control")).toBe(false);
    expect(second?.has("global/pg_control")).toBe(true);
    const uncounted = members.map((m) => ({
      ...m,
      objects: m.objects.map(({ files: _, ...o }) => o),
    }));
    const shared = planAssembly(uncounted).members[0]?.byObject ?? [];
    expect(shared[0]).toBe(shared[1]);
    expect(shared[0]?.has("global/pg_control") && shared[0]?.has("PG_VERSION")).toBe(true);
  });

  it("writes nothing of kept files and only the blocks not reused", async () => {
    const members = await chain();
    const plan = planAssembly(
      members,
      new Set(["base/postgresql.conf"]),
      new Map([["base/base/1/100", new Set([0, 1])]]),
    );
    expect(plan.find("base", "postgresql.conf")?.write).toBe("keep");
    expect(entriesOf(plan.members, 2)["postgresql.conf"]).toBeUndefined();
    expect(entriesOf(plan.members, 0)["base/1/100"]).toBeUndefined();
    expect(entriesOf(plan.members, 2)["base/1/100"]).toMatchObject({ blocks: Uint32Array.of(2) });
    expect(plan.find("base", "base/1/100")).toMatchObject({
      write: "blocks",
      blocks: 1,
      reuse: true,
    });
    expect(plan.kept).toBe(1);
  });
});

describe("planDelta", () => {
  it("keeps equal files, reuses equal blocks, and removes what the backup lacks", async () => {
    const members = await chain();
    const files = filesOf(members[2] as BackupManifest);
    const entry = (path: string) => files.find((f) => f.path === path);
    const hashesOf = (path: string) => Buffer.from(entry(path)?.blocks?.hashes ?? "", "base64");
    const plan = planDelta(
      files,
      new Map([
        ["base/PG_VERSION", { size: 3, sha256: entry("PG_VERSION")?.sha256 }],
        // Same size, one block differs: blocks 0 and 2 are reused.
        [
          "base/base/1/100",
          {
            size: 3 * BLOCK,
            sha256: "0".repeat(64),
            blockHashes: Buffer.concat([
              hashesOf("base/1/100").subarray(0, 16),
              Buffer.alloc(16),
              hashesOf("base/1/100").subarray(32),
            ]),
          },
        ],
        ["base/postgresql.conf", { size: 12, sha256: "1".repeat(64) }],
        ["base/pg_wal/000000010000000000000001", { size: 16 << 20 }],
      ]),
    );
    expect([...plan.keep]).toEqual(["base/PG_VERSION"]);
    expect([...(plan.reuse.get("base/base/1/100") ?? [])]).toEqual([0, 2]);
    expect(plan.removed).toEqual(["base/pg_wal/000000010000000000000001"]);
    expect(plan.removedBytes).toBe(16 << 20);
    expect(plan.rewritten).toBe(files.length - 1);
    // block 1 of base/1/100, postgresql.conf whole, and the files not found at all
    const notFound = files.filter(
      (f) => !["PG_VERSION", "base/1/100", "postgresql.conf"].includes(f.path),
    );
    expect(plan.writeBytes).toBe(BLOCK + 12 + notFound.reduce((n, f) => n + f.size, 0));
  });
});
