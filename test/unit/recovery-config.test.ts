/** Rendering recovery configuration: quoting, stale settings, blank targets, PostgreSQL 11. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  confValue,
  shellWord,
  withBlankTargets,
  writeRecoveryConfig,
} from "../../src/restore/recovery-config.js";

describe("recovery configuration", () => {
  it("quotes values as ALTER SYSTEM does, and shell words for restore_command", () => {
    expect(confValue("it's C:\\tmp")).toBe("'it''s C:\\\\tmp'");
    expect(shellWord("/plain/path")).toBe("/plain/path");
    expect(shellWord("/with space/it's")).toBe("'/with space/it'\\''s'");
    expect(shellWord("/100%/x")).toBe("'/100%%/x'");
  });

  it("blanks every other target before the chosen one", () => {
    expect(withBlankTargets([["recovery_target_lsn", "0/1"]]).map(([k, v]) => `${k}=${v}`)).toEqual(
      [
        "recovery_target=",
        "recovery_target_name=",
        "recovery_target_time=",
        "recovery_target_xid=",
        "recovery_target_lsn=0/1",
      ],
    );
  });

  it("replaces the settings of an earlier restore instead of appending after them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-conf-"));
    try {
      await writeFile(
        join(dir, "postgresql.auto.conf"),
        "work_mem = '8MB'\n# pgha restore of an earlier backup\nrestore_command = 'old'\nrecovery_target_time = '2026-01-01 00:00:00+00'\nrecovery_target_action = 'promote'\narchive_mode = 'off'\n",
      );
      await writeRecoveryConfig(
        dir,
        150000,
        [
          ["restore_command", "new %f %p"],
          ["recovery_target_timeline", "latest"],
        ],
        [["archive_mode", "on"]],
        "recovery",
        "test",
      );
      const text = await readFile(join(dir, "postgresql.auto.conf"), "utf8");
      expect(text).toContain("work_mem = '8MB'");
      expect(text).not.toContain("'old'");
      expect(text).not.toContain("2026-01-01");
      expect(text).not.toContain("archive_mode = 'off'");
      expect(text).toMatch(/recovery_target_time = ''\n[\s\S]*restore_command = 'new %f %p'/);
      expect(await readFile(join(dir, "recovery.signal"), "utf8")).toBe("");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes recovery.conf for PostgreSQL 11, with standby_mode for a standby", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-conf-"));
    try {
      await writeRecoveryConfig(
        dir,
        110000,
        [
          ["primary_conninfo", "host=p"],
          ["recovery_target_timeline", "latest"],
        ],
        [],
        "standby",
        "test",
      );
      expect(await readFile(join(dir, "recovery.conf"), "utf8")).toBe(
        "# test\nstandby_mode = 'on'\nprimary_conninfo = 'host=p'\nrecovery_target_timeline = 'latest'\n",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
