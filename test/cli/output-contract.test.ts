/**
 * One output contract: the --json outputs name the same idea the same way. startTime and
 * stopTime for what took time, `time` for an instant; the names the contract retired
 * (startedAt, finishedAt, ...) appear nowhere, though a drill report is still stored so.
 */
import { describe, expect, it } from "vitest";
import { summarize } from "../../src/cli/commands/backup.js";
import { summarizeDump } from "../../src/cli/commands/dump.js";
import { drillJson, pruneItemJson, RETIRED_FIELD_NAMES } from "../../src/cli/output-contract.js";
import { errorObject } from "../../src/cli/report.js";
import { PghaError } from "../../src/errors.js";
import { planStatus } from "../../src/status/plan-status.js";
import { makeBackupManifest } from "../helpers/builders.js";
import { at, backup, clusterFacts, drill, dump, gappedWal } from "../helpers/status-facts.js";

/** Every key of a JSON value, at any depth. */
function keysOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keysOf(v, into);
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      into.add(k);
      keysOf(v, into);
    }
  }
  return into;
}

const b1 = backup("20261201T100000Z", 1, 2, 3, at("10:05"));
const passed = drill("20261201T123000Z", at("12:31"), true);
const status = planStatus(
  {
    ...clusterFacts([b1], gappedWal()),
    dumps: [dump("20261201T110000Z", at("11:02"))],
    drills: [passed],
  },
  Date.parse(at("13:00")),
);

/** What `backup list/info`, `dump list/info`, `drill`, `drill list`, `prune` and `status` print. */
const OUTPUTS: [string, unknown][] = [
  ["backup list", summarize(makeBackupManifest({ startTime: at("10:00"), stopTime: at("10:05") }))],
  ["dump list", summarizeDump(dump("20261201T110000Z", at("11:02")))],
  ["drill run", drillJson(passed)],
  ["prune", pruneItemJson({ id: "b1", time: at("10:00"), pinned: false, keep: true, reasons: [] })],
  ["status", JSON.parse(JSON.stringify(status))],
  ["an error", errorObject(new PghaError("usage", "bad"), 2)],
];

describe("the output contract", () => {
  it.each(OUTPUTS)("%s uses none of the retired field names", (_, output) => {
    const keys = keysOf(output);
    expect(RETIRED_FIELD_NAMES.filter((name) => keys.has(name))).toEqual([]);
  });

  it("names a start and an end startTime and stopTime everywhere", () => {
    const spans = [
      OUTPUTS[0]?.[1],
      OUTPUTS[1]?.[1],
      OUTPUTS[2]?.[1],
      status.lastBackup,
      status.lastDump,
      status.lastDrill,
    ];
    for (const span of spans)
      expect(span).toMatchObject({ startTime: expect.any(String), stopTime: expect.any(String) });
    // A stored drill report keeps its format; the printed one says the same in the contract's words.
    expect(drillJson(passed)).toMatchObject({
      startTime: passed.startedAt,
      stopTime: passed.finishedAt,
      durationSeconds: 60,
    });
    expect(
      pruneItemJson({ id: "b1", time: at("10:00"), pinned: true, keep: true, reasons: ["pinned"] }),
    ).toEqual({
      id: "b1",
      startTime: at("10:00"),
      pinned: true,
      keep: true,
      reasons: ["pinned"],
    });
  });
});
