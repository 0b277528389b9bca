/** pgha check: which steps run after which, and the exit code a run ends with. */
import { describe, expect, it } from "vitest";
import {
  blockedBy,
  CHECK_STEPS,
  type CheckStepName,
  checkExitCode,
  failed,
  passed,
  STEP_NEEDS,
  type StepResult,
  skipped,
} from "../../src/check/steps.js";
import { EXIT_CODES } from "../../src/errors.js";

const allPass = (): StepResult[] => CHECK_STEPS.map((step) => passed(step, "ok"));
const withResult = (result: StepResult): StepResult[] =>
  allPass().map((r) => (r.step === result.step ? result : r));

describe("check exit codes", () => {
  it("is 0 when every step passed, or some were skipped without a failure", () => {
    expect(checkExitCode(allPass())).toBe(0);
    expect(checkExitCode(withResult(skipped("server", "no server named")))).toBe(0);
  });

  it.each<[CheckStepName, number]>([
    ["config", EXIT_CODES.usage],
    ["storage", EXIT_CODES.storage],
    ["server", EXIT_CODES.postgres],
    ["identity", EXIT_CODES.clusterMismatch],
    ["archive-mode", EXIT_CODES.notArchiving],
    ["archive-command", EXIT_CODES.notArchiving],
    ["wal-switch", EXIT_CODES.walNotArchived],
  ])("a failed %s step exits %i", (step, code) => {
    expect(checkExitCode(withResult(failed(step, "broken")))).toBe(code);
  });

  it("takes the code of the error that failed the step, and the first failed step's", () => {
    expect(checkExitCode(withResult(failed("storage", "corrupt", undefined, "integrity")))).toBe(
      EXIT_CODES.integrity,
    );
    const two = allPass().map((r) =>
      r.step === "wal-switch" || r.step === "server" ? failed(r.step, "broken") : r,
    );
    expect(checkExitCode(two.reverse())).toBe(EXIT_CODES.postgres);
  });

  it("gives check's own codes their own numbers", () => {
    const codes = new Set(Object.values(EXIT_CODES));
    expect(codes.size).toBe(Object.keys(EXIT_CODES).length);
    expect(EXIT_CODES.notArchiving).not.toBe(EXIT_CODES.walNotArchived);
  });
});

describe("check step order", () => {
  it("runs every step after what it needs", () => {
    for (const step of CHECK_STEPS) {
      for (const need of STEP_NEEDS[step]) {
        expect(CHECK_STEPS.indexOf(need)).toBeLessThan(CHECK_STEPS.indexOf(step));
      }
    }
  });

  it("skips a step whose prerequisite failed or was skipped, naming it", () => {
    const done = [passed("config", ""), failed("storage", "down"), skipped("server", "none")];
    expect(blockedBy("conditional-writes", done)?.step).toBe("storage");
    expect(blockedBy("archive-mode", done)?.status).toBe("skip");
    expect(blockedBy("server", done)).toBeUndefined();
    expect(blockedBy("wal-switch", allPass())).toBeUndefined();
  });
});
