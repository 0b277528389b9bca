/**
 * The planner follows only history files that parse and agree with their parent's, and
 * says which it ignores: one bad file does not refuse every restore (issue 12, point 3).
 */
import { describe, expect, it } from "vitest";
import type { RestoreFacts, WalObject } from "../../src/restore/facts.js";
import { planRestore } from "../../src/restore/plan.js";
import type { RestoreRequest } from "../../src/restore/target.js";
import { makeBackupManifest } from "../helpers/builders.js";

const seg = (tl: number, n: number) =>
  `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;

const backup = makeBackupManifest({
  id: "A",
  timeline: 1,
  startWal: seg(1, 2),
  stopWal: seg(1, 2),
  startLsn: "0/2000028",
  stopLsn: "0/2000100",
  startTime: "2026-11-20T00:00:00Z",
  stopTime: "2026-11-20T00:00:00Z",
});

function facts(wal: [number, number][], histories: [number, string][]): RestoreFacts {
  const map = new Map<string, WalObject>();
  for (const [tl, n] of wal)
    map.set(seg(tl, n), { name: seg(tl, n), size: 100, storedAt: undefined });
  return { backups: [backup], histories: new Map(histories), wal: map };
}

const latest: RestoreRequest = {
  target: { kind: "latest" },
  timeline: "latest",
  exclusive: false,
  action: "pause",
  backupId: undefined,
};

describe("history files a plan follows", () => {
  it("ignores a garbage history file: --latest plans on the timelines it can follow and names the file", () => {
    const outcome = planRestore(
      facts(
        [
          [1, 2],
          [1, 3],
          [1, 4],
        ],
        [[2, "garbage pushed by an older pgha\n"]],
      ),
      latest,
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.plan.targetTimeline).toBe(1);
    expect(outcome.plan.wal.last).toBe(seg(1, 4));
    expect(outcome.plan.notes.join("\n")).toMatch(
      /history file not followed: 00000002\.history: line 1 does not start with a timeline number/,
    );
    // PostgreSQL's 'latest' would read that file and stop: the plan names the timeline.
    expect(outcome.plan.settings).toContainEqual(["recovery_target_timeline", "1"]);
  });

  it("still follows a good timeline past a bad one, and writes 'latest' when nothing is ignored", () => {
    const good2 = "1\t0/3800000\tno recovery target specified\n";
    const ok = planRestore(
      facts(
        [
          [1, 2],
          [1, 3],
          [2, 3],
          [2, 4],
        ],
        [[2, good2]],
      ),
      latest,
    );
    expect(ok.ok && ok.plan.targetTimeline).toBe(2);
    expect(ok.ok && ok.plan.settings).toContainEqual(["recovery_target_timeline", "latest"]);
    const bad3 = "1\t0/3800000\tx\n7\t0/4800000\tx\n";
    const outcome = planRestore(
      facts(
        [
          [1, 2],
          [1, 3],
          [2, 3],
          [2, 4],
        ],
        [
          [2, good2],
          [3, bad3],
        ],
      ),
      latest,
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.plan.targetTimeline).toBe(2);
    expect(outcome.plan.notes.join("\n")).toMatch(/00000003\.history: line 2: parent timeline 7/);
  });

  it("ignores a history file whose ancestry contradicts its parent's", () => {
    const good2 = "1\t0/3800000\tx\n";
    const other3 = "1\t0/2800000\tx\n2\t0/4800000\tx\n"; // says 2 branched elsewhere
    const outcome = planRestore(
      facts(
        [
          [1, 2],
          [1, 3],
          [2, 3],
          [2, 4],
          [3, 4],
        ],
        [
          [2, good2],
          [3, other3],
        ],
      ),
      latest,
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.plan.targetTimeline).toBe(2);
    expect(outcome.plan.notes.join("\n")).toMatch(
      /00000003\.history: its ancestry differs from the one 00000002\.history lists/,
    );
  });

  it("refuses an explicit --target-timeline whose history file is ignored, saying why", () => {
    const outcome = planRestore(
      facts(
        [
          [1, 2],
          [2, 3],
        ],
        [[2, "garbage\n"]],
      ),
      {
        ...latest,
        timeline: 2,
      },
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.refusal.reasons.join("; ")).toMatch(
        /timeline 2's history file 00000002\.history is not followed: line 1/,
      );
    }
  });

  it("reports a history file stored with two contents as not followed", () => {
    const f = facts(
      [
        [1, 2],
        [1, 3],
      ],
      [],
    );
    f.unreadableHistories = new Map([[2, "stored with 2 different contents (k1, k2)"]]);
    const outcome = planRestore(f, latest);
    expect(outcome.ok && outcome.plan.notes.join("\n")).toMatch(
      /00000002\.history: stored with 2 different contents/,
    );
  });
});
