/**
 * The command line. run() never throws and never exits: it returns the exit code for
 * bin/pgha. PostgreSQL's own calls (`wal-push %p`, `wal-fetch %f %p`, with flags from the
 * option table) take a fast path that does not load commander; everything else, help
 * and every malformed call go through the commander program (program.ts).
 */
import { EXIT_CODES, exitCodeOf, UsageError } from "../errors.js";
import { HOT_COMMANDS, type HotArgs, parseHotArgs } from "./hot-args.js";
import { errorObject, reportError, wantsJson } from "./report.js";

/**
 * Exit code for an error that escaped run() (an exception thrown outside any promise
 * chain). Node would exit 1, which for wal-fetch means "not available" and could end
 * recovery early; wal-fetch fails closed instead, everything else is internal.
 */
export async function fatalExitCode(argv: readonly string[], error: unknown): Promise<number> {
  reportError(error);
  if (argv[0] !== "wal-fetch") return EXIT_CODES.internal;
  const { failureExitCode } = await import("./commands/wal-fetch.js");
  return failureExitCode(pgdataFlag(argv));
}

export async function run(argv: readonly string[]): Promise<number> {
  let code: number = EXIT_CODES.ok;
  try {
    const hot = parseHotArgs(argv);
    if (hot) return await runHot(hot);
    const { buildProgram } = await import("./program.js");
    const program = buildProgram((c) => {
      code = c;
    });
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (error) {
    let result: number;
    if (isCommanderError(error)) {
      // Help and version end with exitCode 0; parse errors were printed by commander.
      result = error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    } else {
      reportError(error);
      result = exitCodeOf(error);
    }
    // With --json, a failure is a document on stdout too: scripts read one stream.
    if (result !== EXIT_CODES.ok && wantsJson(argv)) {
      const reported = isCommanderError(error)
        ? new UsageError(error.message.replace(/^error: /, ""))
        : error;
      process.stdout.write(`${JSON.stringify(errorObject(reported, result), null, 2)}\n`);
    }
    if (result === EXIT_CODES.ok || argv[0] !== "wal-fetch") return result;
    // A restore_command typo must not read as "not available": that ends recovery early.
    const { failureExitCode } = await import("./commands/wal-fetch.js");
    return failureExitCode(pgdataFlag(argv), true);
  }
}

function pgdataFlag(argv: readonly string[]): string | undefined {
  const at = argv.findIndex((a) => a === "--pgdata" || a.startsWith("--pgdata="));
  return at === -1 ? undefined : (argv[at]?.split("=")[1] ?? argv[at + 1]);
}

/** The calls PostgreSQL makes, without loading commander. */
function runHot(hot: HotArgs): Promise<number> {
  return HOT_COMMANDS[hot.command].run(hot.positionals, { settings: hot.opts });
}

function isCommanderError(
  error: unknown,
): error is { exitCode: number; code: string; message: string } {
  const e = error as { code?: unknown; exitCode?: unknown } | undefined;
  return (
    typeof e?.code === "string" && e.code.startsWith("commander.") && typeof e.exitCode === "number"
  );
}
