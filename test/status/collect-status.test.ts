/** collectStatuses over a repository (memory store): clusters, push times, bytes by kind. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { writeDrillReport } from "../../src/repository/drill-report.js";
import { putJson } from "../../src/repository/json-object.js";
import {
  backupManifestKey,
  backupVerifyKey,
  dumpManifestKey,
  walKey,
} from "../../src/repository/keys.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { type VerifyRecord, writeVerifyRecord } from "../../src/repository/verify-record.js";
import { collectStatuses } from "../../src/status/collect-status.js";
import { MemoryStore } from "../../src/storage/memory.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { at, drill, dump, seg } from "../helpers/status-facts.js";

async function putSegment(store: MemoryStore, cluster: string, name: string, pushedAt: string) {
  const file = parseWalFileName(name);
  if (!file) throw new Error(name);
  const body = Buffer.alloc(100, 1);
  const sha256 = createHash("sha256").update(body).digest("hex");
  const meta = encodeWalMeta({ sha256, rawSize: 100, compression: "none" }, new Date(pushedAt));
  await store.put(walKey(cluster, file), body, { metadata: meta });
}

/** "main": a backup, two segments, a dump set and a drill; "other": one segment only. */
async function repository(): Promise<MemoryStore> {
  const store = new MemoryStore();
  const backup = makeBackupManifest({
    id: "20261201T100000Z",
    startWal: seg(1, 1),
    stopWal: seg(1, 1),
    startLsn: "0/1000028",
    stopLsn: "0/1000100",
    startTime: at("10:00"),
    stopTime: at("10:01"),
  });
  await putJson(store, backupManifestKey("main", backup.id), backup);
  await putSegment(store, "main", seg(1, 1), at("10:01"));
  await putSegment(store, "main", seg(1, 2), at("12:00"));
  const set = dump("20261201T110000Z", at("11:00"));
  await putJson(store, dumpManifestKey("main", set.id), set);
  await writeDrillReport(store, drill("20261201T113000Z", at("11:30"), true));
  await putSegment(store, "other", seg(1, 7), at("12:30"));
  return store;
}

const config = (cluster: string) =>
  resolveConfig({ flags: { cluster }, env: { PGHA_REPO: "/unused" }, file: undefined });
const now = () => Date.parse(at("13:00"));

describe("collectStatuses", () => {
  it("the newest backup is not restorable when the last verify of it or of its chain failed", async () => {
    const store = await repository();
    const full = "20261201T100000Z";
    const record = (id: string, ok: boolean): VerifyRecord => ({
      format: 1,
      kind: "verify",
      id,
      time: at("12:10"),
      ok,
      objects: 1,
      hashed: 1,
      findings: [],
    });
    const statusOf = async () =>
      (
        await collectStatuses(store, config("main"), memoryLogger(), {
          allClusters: false,
          askServer: false,
          now,
        })
      ).statuses[0]?.lastBackup;
    await writeVerifyRecord(store, backupVerifyKey("main", full), record(full, true));
    expect(await statusOf()).toMatchObject({ id: full, restorable: true, verifyFailed: [] });
    await writeVerifyRecord(store, backupVerifyKey("main", full), record(full, false));
    expect(await statusOf()).toMatchObject({ id: full, restorable: false, verifyFailed: [full] });
    // An increment on it (its own WAL archived, its own record ok) fails with it.
    const incr = makeBackupManifest({
      id: "20261201T120000Z",
      type: "incr",
      parent: full,
      chain: [full],
      startWal: seg(1, 2),
      stopWal: seg(1, 2),
      startLsn: "0/2000028",
      stopLsn: "0/2000100",
      startTime: at("12:00"),
      stopTime: at("12:01"),
    });
    await putJson(store, backupManifestKey("main", incr.id), incr);
    await writeVerifyRecord(store, backupVerifyKey("main", incr.id), record(incr.id, true));
    expect(await statusOf()).toMatchObject({
      id: incr.id,
      restorable: false,
      verifyFailed: [full],
    });
    await writeVerifyRecord(store, backupVerifyKey("main", full), record(full, true));
    expect(await statusOf()).toMatchObject({ id: incr.id, restorable: true, verifyFailed: [] });
  });

  it("reports every cluster with --all-clusters, each from its own objects", async () => {
    const store = await repository();
    const { statuses } = await collectStatuses(store, config("main"), memoryLogger(), {
      allClusters: true,
      askServer: false,
      now,
    });
    expect(statuses.map((s) => s.cluster)).toEqual(["main", "other"]);
    const [main, other] = statuses;
    expect(main?.lastArchived).toMatchObject({
      name: seg(1, 2),
      clock: "database",
      ageSeconds: 3600,
    });
    expect(main?.timelines[0]).toMatchObject({ start: at("10:01"), end: at("12:00"), gaps: [] });
    expect(main?.lastBackup?.restorable).toBe(true);
    expect(main?.lastDump?.id).toBe("20261201T110000Z");
    expect(main?.lastDrill?.passed).toBe(true);
    expect(main?.repositoryBytes.wal).toBe(200);
    expect(main?.repositoryBytes.backups).toBeGreaterThan(0);
    expect(main?.repositoryBytes.dumps).toBeGreaterThan(0);
    expect(main?.repositoryBytes.other).toBeGreaterThan(0); // the drill report
    expect(main?.server).toBeUndefined();
    // No backup: the newest segment's push time is read all the same.
    expect(other?.lastArchived).toMatchObject({
      name: seg(1, 7),
      clock: "database",
      time: at("12:30"),
    });
    expect(other?.lastBackup).toBeNull();
  });

  it("refuses a cluster the repository does not hold, naming the ones it does", async () => {
    const options = { allClusters: false, askServer: false, now };
    await expect(
      collectStatuses(await repository(), config("mian"), memoryLogger(), options),
    ).rejects.toMatchObject({
      exit: "notFoundInRepo",
      hint: expect.stringContaining("main, other"),
    });
    const empty = await collectStatuses(new MemoryStore(), config("main"), memoryLogger(), options);
    expect(empty.statuses.map((s) => s.lastArchived)).toEqual([null]);
  });
});
