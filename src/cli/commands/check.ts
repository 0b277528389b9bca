/** pgha check: every step of the setup, pass, fail or skip, each printed as it ends. */
import { checkExitCode, type StepResult } from "../../check/steps.js";
import type { OptionsOf } from "../../config/flags.js";
import { loadContext } from "../context.js";

const WIDTH = "conditional-writes".length + 2;

function renderStep(result: StepResult): string {
  const status = result.status === "fail" ? "FAIL" : result.status;
  const pad = " ".repeat(6 + WIDTH);
  const hint = result.hint === undefined ? "" : `\n${pad}HINT: ${result.hint}`;
  return `${status.padEnd(6)}${result.step.padEnd(WIDTH)}${result.detail}${hint}\n`;
}

export async function checkCommand(opts: OptionsOf<"check">): Promise<number> {
  const { runCheck } = await import("../../check/run-check.js");
  const json = opts.json === true;
  const results = await runCheck({
    load: () => loadContext(opts),
    env: process.env,
    timeoutMs: opts.switchTimeout,
    onResult: json ? undefined : (result) => process.stdout.write(renderStep(result)),
  });
  const exitCode = checkExitCode(results);
  const failedStep = results.find((r) => r.status === "fail")?.step ?? null;
  if (json) {
    const report = { ok: exitCode === 0, exitCode, failedStep, steps: results };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else if (failedStep === null) {
    const skipped = results.filter((r) => r.status === "skip").length;
    process.stdout.write(
      `check passed${skipped > 0 ? ` (${skipped} step${skipped === 1 ? "" : "s"} skipped)` : ""}\n`,
    );
  } else {
    process.stdout.write(`check failed at ${failedStep} (exit ${exitCode})\n`);
  }
  return exitCode;
}
