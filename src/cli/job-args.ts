/**
 * A scheduled job's command line, checked when the scheduler starts (and by schedule
 * show) with the parser the job itself will meet: the commander program built from the
 * command and flag tables, then the settings resolved as the job's loadContext will. A
 * typo fails at start, not at 03:00. Nothing runs: every command is replaced by one
 * that only records what it got. The values a command parses itself before doing
 * anything (drill's target, prune's policy) are checked here with its own functions.
 */
import type { CommanderError } from "commander";
import { planRetention, RetentionPolicyError } from "../../retention/index.js";
import { UsageError } from "../errors.js";
import { policyFrom } from "../prune/plan-prune.js";
import type { JobSpec } from "../schedule/jobs.js";
import { drillTarget } from "./commands/drill.js";
import { COMMANDS } from "./commands-table.js";
import { loadContext } from "./context.js";
import { buildProgram } from "./program.js";

/** The job's argv, after `pgha`, exactly as the scheduler starts it. */
export function jobArgv(job: Pick<JobSpec, "run" | "args">, configFile: string | undefined) {
  return [job.run, ...(configFile ? ["--config", configFile] : []), ...job.args];
}

export async function checkJobArgs(
  job: Pick<JobSpec, "name" | "run" | "args">,
  configFile: string | undefined,
): Promise<void> {
  const argv = jobArgv(job, configFile);
  const fail = (why: string) =>
    new UsageError(
      `job '${job.name}': ${why}`,
      `the job runs 'pgha ${argv.join(" ")}': fix its "args" in the config file`,
    );
  let settings: Parameters<typeof loadContext>[0] | undefined;
  let command: string | undefined;
  const recording = Object.fromEntries(
    Object.entries(COMMANDS).map(([name, spec]) => [
      name,
      {
        ...spec,
        run: async (_: unknown, opts: Parameters<typeof loadContext>[0]) => {
          settings = opts;
          command = name;
          return 0;
        },
      },
    ]),
  ) as unknown as typeof COMMANDS;
  const program = buildProgram(() => undefined, recording);
  let said = "";
  const quiet = (command: typeof program) => {
    command.configureOutput({
      writeOut: () => undefined,
      writeErr: (text) => {
        said += text;
      },
    });
    for (const sub of command.commands) quiet(sub);
  };
  quiet(program);
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof UsageError) throw fail(error.message);
    const commander = error as Partial<CommanderError>;
    if (typeof commander.code === "string" && commander.code.startsWith("commander.")) {
      const first = said.split("\n").find((line) => line.trim() !== "") ?? commander.message;
      throw fail(String(first).replace(/^error: /, ""));
    }
    throw error;
  }
  if (!settings) throw fail("it names no command that runs");
  try {
    const { config } = loadContext(settings);
    // What pruneCommand and drillCommand check first, before any lock or download.
    if (command === "prune")
      planRetention([], policyFrom(config.retention), new Date().toISOString());
    if (command === "drill run")
      drillTarget(settings as Parameters<typeof drillTarget>[0], new Date());
  } catch (error) {
    if (error instanceof UsageError || error instanceof RetentionPolicyError)
      throw fail(error.message);
    throw error;
  }
}
