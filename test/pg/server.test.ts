/** What pgha reads from the server: backup_label. */
import { describe, expect, it } from "vitest";
import { parseBackupLabel } from "../../src/pg/server.js";
import { parseLsn } from "../../src/wal/names.js";

describe("backup labels", () => {
  it("reads LSNs and backup labels", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    const label = parseBackupLabel(
      "START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: 0/9000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-11-21 22:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n",
    );
    expect(label).toEqual({ startWal: "000000010000000000000009", timeline: 1, fromStandby: true });
  });
});
