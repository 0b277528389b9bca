import { describe, expect, it } from "vitest";
import {
  excludedRelationFiles,
  isDatabaseDirectory,
  isEmptiedDirectory,
  isExcluded,
} from "../../src/backup/exclude.js";

describe("what a base backup leaves out", () => {
  it.each([
    ["postmaster.pid", true, true],
    ["postmaster.opts", true, true],
    ["standby.signal", true, true],
    ["backup_label", true, true],
    ["base/5/pgsql_tmp", true, true],
    ["base/pgsql_tmp12.3", true, true],
    ["global/pg_internal.init", true, true],
    ["global/pg_control.pgha-restoring", true, true],
    [".pgha-restore-incomplete", true, true],
    ["postgresql.conf", true, false],
    ["global/pg_control", true, false],
    ["base/5/postmaster.pid", true, false],
    ["PG_15_202209061/16384/16385", false, false],
  ])("%s (data directory %s) excluded: %s", (path, dataDir, excluded) => {
    expect(isExcluded(path, dataDir)).toBe(excluded);
  });

  it.each([
    ["pg_wal", true],
    ["pg_replslot", true],
    ["pg_dynshmem", true],
    ["pg_notify", true],
    ["pg_serial", true],
    ["pg_snapshots", true],
    ["pg_stat_tmp", true],
    ["pg_subtrans", true],
    ["pg_xact", false],
    ["base", false],
  ])("keeps the runtime directory %s but not its contents: %s", (dir, emptied) => {
    expect(isEmptiedDirectory(dir)).toBe(emptied);
  });

  it("leaves out temporary relations and all but the init fork of unlogged ones", () => {
    const names = [
      "16384",
      "16384.1",
      "16384_fsm",
      "16390",
      "16390_init",
      "16390_fsm",
      "16390.2",
      "t3_16400",
      "t3_16400_fsm",
      "PG_VERSION",
    ];
    expect([...excludedRelationFiles(names)].sort()).toEqual([
      "16390",
      "16390.2",
      "16390_fsm",
      "t3_16400",
      "t3_16400_fsm",
    ]);
    expect(isDatabaseDirectory("base/5", true)).toBe(true);
    expect(isDatabaseDirectory("global/5", true)).toBe(false);
    expect(isDatabaseDirectory("PG_15_202209061/16384", false)).toBe(true);
  });
});
