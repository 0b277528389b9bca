/** standbySettings: a streaming standby, and one that follows the repository alone. */
import { describe, expect, it } from "vitest";
import { standbySettings } from "../../src/restore/recovery-settings.js";

describe("standbySettings", () => {
  it("streams from the primary through a slot, with the archive as fallback", () => {
    expect(
      standbySettings({
        primaryConninfo: "host=p",
        slot: "s1",
        restoreCommand: "pgha wal-fetch %f %p",
        delayMs: 4000,
      }),
    ).toEqual([
      ["primary_conninfo", "host=p"],
      ["primary_slot_name", "s1"],
      ["restore_command", "pgha wal-fetch %f %p"],
      ["recovery_target_timeline", "latest"],
      ["recovery_min_apply_delay", "4000ms"],
    ]);
  });

  it("follows the archive alone without a conninfo: primary_conninfo is blanked, no slot", () => {
    expect(
      standbySettings({
        primaryConninfo: undefined,
        slot: undefined,
        restoreCommand: "pgha wal-fetch %f %p",
        delayMs: undefined,
      }),
    ).toEqual([
      ["primary_conninfo", ""],
      ["restore_command", "pgha wal-fetch %f %p"],
      ["recovery_target_timeline", "latest"],
    ]);
  });
});
