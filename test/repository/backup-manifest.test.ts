/** Backup manifests: ids. */
import { describe, expect, it } from "vitest";
import { makeBackupId } from "../../src/repository/backup-manifest.js";

describe("backup ids", () => {
  it("makes sortable time-based ids", () => {
    expect(makeBackupId(new Date("2026-11-21T22:05:12.345Z"))).toBe("20261121T220512Z");
  });
});
