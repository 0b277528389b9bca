/** pgha status as text (pure): the rows, and the bar a terminal gets per timeline. */
import { describe, expect, it } from "vitest";
import { renderBar, renderStatusText } from "../../src/cli/status-text.js";
import { planStatus } from "../../src/status/plan-status.js";
import { at, backup, clusterFacts, drill, dump, gappedWal, seg } from "../helpers/status-facts.js";

const NOW = Date.parse(at("13:00"));
const backups = [
  backup("20261201T100000Z", 1, 2, 3, at("10:05")),
  backup("20261201T113000Z", 1, 8, 8, at("11:35")),
];
const facts = clusterFacts(backups, gappedWal(), {
  drills: [drill("d1", at("12:10"), true), drill("d2", at("12:40"), false)],
  dumps: [dump("20261201T120000Z", at("12:00"))],
  server: { reachable: false, notes: ["the server is not reachable: connect ECONNREFUSED"] },
});
const status = planStatus(facts, NOW);
const marks = { backups, dumps: facts.dumps, drills: facts.drills };

describe("renderBar", () => {
  // 10:03 (the oldest backup's start) to 13:00 in 59 columns: 3 minutes each.
  const [bar = "", markLine = "", times = ""] = renderBar(
    status.timelines[0] as NonNullable<(typeof status.timelines)[0]>,
    marks,
    NOW,
    59,
  );
  const cells = bar.slice(bar.indexOf("|") + 1, bar.lastIndexOf("|"));
  const column = (hhmm: string) =>
    Math.floor((Date.parse(at(hhmm)) - Date.parse(at("10:03"))) / 180_000);
  const markAt = (hhmm: string) => [...markLine.slice(bar.indexOf("|") + 1)][column(hhmm)];

  it("draws restorable WAL, the gap, what is not archived yet and now", () => {
    expect(bar).toMatch(/^ {2}timeline 1 \|[=x\-. ]{59}\| now$/);
    expect(cells.slice(column("10:06"), column("10:27"))).toMatch(/^=+$/);
    expect(cells.slice(column("10:33"), column("11:12"))).toMatch(/^x+$/);
    expect(cells.slice(column("11:18"), column("11:33"))).toMatch(/^-+$/);
    expect(cells.slice(column("11:39"), column("12:27"))).toMatch(/^=+$/);
    expect(cells.slice(column("12:33"))).toMatch(/^\.+$/);
    expect(times).toMatch(/2026-12-01T10:03:00Z +now$/);
  });

  it("marks backups, dump sets and drills where they ended, a failure as such", () => {
    expect(markAt("10:05")).toBe("B");
    expect(markAt("11:35")).toBe("B");
    expect(markAt("12:00")).toBe("D");
    expect(markAt("12:10")).toBe("✓");
    expect(markAt("12:40")).toBe("✗");
  });

  it("never hides a failed drill under a passing one in the same column", () => {
    const same = {
      ...marks,
      drills: [drill("x", at("12:40"), false), drill("y", at("12:41"), true)],
    };
    const [, line = ""] = renderBar(status.timelines[0] as never, same, NOW, 59);
    expect(line).toContain("✗");
    expect(line).not.toContain("✓");
  });
});

describe("renderStatusText", () => {
  it("gives the RPO, the window with its gap, the newest items and the server's note", () => {
    const text = renderStatusText(status, { now: NOW });
    expect(text).toContain(
      `last archived WAL  ${seg(1, 10)}, pushed 2026-12-01T12:30:00Z (30m00s ago: the RPO)`,
    );
    expect(text).toContain(
      "timeline 1         restorable from 2026-12-01T10:05:00Z to just before 2026-12-01T12:30:00Z, 1 gap",
    );
    expect(text).toContain(`${seg(1, 5)} .. ${seg(1, 6)} missing (2 segments)`);
    expect(text).toMatch(/last drill +d2, FAILED \(sql 1 failed\)/);
    expect(text).toContain("server note        the server is not reachable");
    expect(text).not.toContain("|"); // no bar without a terminal
  });

  it("adds a bar per timeline and a legend on a terminal", () => {
    const text = renderStatusText(status, { now: NOW, barWidth: 40, marks });
    expect(text.split("\n").filter((l) => /^ {2}timeline \d+ \|/.test(l))).toHaveLength(1);
    expect(text).toContain("x WAL gap");
  });
});
