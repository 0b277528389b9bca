/**
 * Where `restore find` starts reading: the newest backup that ended at or before --since,
 * also when --since lies past the archive's end (an idle cluster, `--since -10m`), which a
 * restore to that time would refuse.
 */
import { describe, expect, it } from "vitest";
import { chooseScan } from "../../src/find/find-in-archive.js";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { backupOverSegments, seg } from "../helpers/builders.js";

const full = backupOverSegments("F", 1, 2, 2, {
  startTime: "2026-11-21T01:00:00Z",
  stopTime: "2026-11-21T01:10:00Z",
});
const incr = backupOverSegments("I", 1, 4, 4, {
  startTime: "2026-11-21T03:00:00Z",
  stopTime: "2026-11-21T03:05:00Z",
});

function facts(): RestoreFacts {
  const wal = new Map<string, WalObject>();
  for (const n of [2, 3, 4, 5])
    wal.set(seg(1, n), {
      name: seg(1, n),
      size: 100,
      storedAt: `2026-11-21T0${n}:30:00Z`,
      pushedAt: `2026-11-21T0${n}:30:00Z`,
    });
  return { backups: [full, incr], histories: new Map(), wal, listedAt: "2026-11-21T12:00:00Z" };
}

describe("chooseScan", () => {
  it("starts at the newest backup that ended before --since inside the archive", () => {
    expect(chooseScan(facts(), Date.parse("2026-11-21T04:00:00Z")).backup.id).toBe("I");
  });

  it("starts at the newest backup that ended before --since past the archive's end, not the oldest", () => {
    // The last segment was pushed at 05:30: a restore to 06:00 is refused as past the archive.
    expect(chooseScan(facts(), Date.parse("2026-11-21T06:00:00Z")).backup.id).toBe("I");
  });

  it("starts at the oldest backup when --since is before every backup's end, or not given", () => {
    expect(chooseScan(facts(), Date.parse("2026-11-21T01:05:00Z")).backup.id).toBe("F");
    expect(chooseScan(facts(), undefined).backup.id).toBe("F");
  });
});
