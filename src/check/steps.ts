/**
 * Pure: the steps of `pgha check`, in the order they run and print, what each needs to
 * have passed first, and the exit code of a run. A step whose prerequisite did not pass is
 * skipped (it would only fail for the same reason); a step that cannot apply (no server
 * named) is skipped with a note and does not fail the check.
 *
 * The exit code is the first failed step's: the kind of its error (config 2, storage 7,
 * server 10, identity 4) or check's own codes for a server that does not archive into
 * this repository (notArchiving) and a switched segment that did not arrive (walNotArchived).
 */
import { EXIT_CODES, type ExitCodeName } from "../errors.js";

export const CHECK_STEPS = [
  "config",
  "storage",
  "conditional-writes",
  "server",
  "identity",
  "archive-mode",
  "archive-command",
  "wal-switch",
] as const;

export type CheckStepName = (typeof CHECK_STEPS)[number];

/** What must have passed before a step runs. */
export const STEP_NEEDS: { readonly [S in CheckStepName]: readonly CheckStepName[] } = {
  config: [],
  storage: ["config"],
  "conditional-writes": ["storage"],
  server: ["config"],
  identity: ["storage", "server"],
  "archive-mode": ["server"],
  "archive-command": ["server"],
  "wal-switch": ["storage", "identity", "archive-mode", "archive-command"],
};

/** The exit code of a step's failure when its error does not carry one. */
export const STEP_EXIT: { readonly [S in CheckStepName]: ExitCodeName } = {
  config: "usage",
  storage: "storage",
  "conditional-writes": "storage",
  server: "postgres",
  identity: "clusterMismatch",
  "archive-mode": "notArchiving",
  "archive-command": "notArchiving",
  "wal-switch": "walNotArchived",
};

export type StepStatus = "pass" | "fail" | "skip";

export interface StepResult {
  readonly step: CheckStepName;
  readonly status: StepStatus;
  /** What was found: one line. */
  readonly detail: string;
  /** What to do about a failure (or what a skip means). */
  readonly hint?: string;
  /** A failure's exit code. */
  readonly exitCode?: number;
}

export function passed(step: CheckStepName, detail: string): StepResult {
  return { step, status: "pass", detail };
}

export function skipped(step: CheckStepName, detail: string, hint?: string): StepResult {
  return hint === undefined
    ? { step, status: "skip", detail }
    : { step, status: "skip", detail, hint };
}

export function failed(
  step: CheckStepName,
  detail: string,
  hint?: string,
  exit: ExitCodeName = STEP_EXIT[step],
): StepResult {
  const result = { step, status: "fail" as const, detail, exitCode: EXIT_CODES[exit] };
  return hint === undefined ? result : { ...result, hint };
}

/** The first prerequisite of `step` that did not pass, with how it ended. */
export function blockedBy(
  step: CheckStepName,
  done: readonly StepResult[],
): StepResult | undefined {
  for (const need of STEP_NEEDS[step]) {
    const result = done.find((r) => r.step === need);
    if (result === undefined || result.status !== "pass") {
      return result ?? { step: need, status: "skip", detail: "did not run" };
    }
  }
  return undefined;
}

/** The skip result of a step a prerequisite stopped. */
export function skippedFor(step: CheckStepName, blocker: StepResult): StepResult {
  return skipped(
    step,
    blocker.status === "fail" ? `${blocker.step} failed` : `${blocker.step} was skipped`,
  );
}

/** 0 when nothing failed, else the exit code of the first failed step in CHECK_STEPS order. */
export function checkExitCode(results: readonly StepResult[]): number {
  for (const step of CHECK_STEPS) {
    const result = results.find((r) => r.step === step);
    if (result?.status === "fail") return result.exitCode ?? EXIT_CODES[STEP_EXIT[step]];
  }
  return EXIT_CODES.ok;
}
