#!/usr/bin/env node
// The Node.js entry (bin/pgha, the shell launcher, runs it; so can `node bin/pgha.mjs`):
// load the compiled CLI, run it and exit with its code. Exiting explicitly keeps idle HTTP
// keep-alive sockets from holding archive_command open.
import { existsSync } from "node:fs";

const argv = process.argv.slice(2);
// The exit code of a pgha that failed before or outside its own error handling: a failing
// restore_command must not tell PostgreSQL "not available" during archive recovery.
// EXIT_CODES.failClosed and EXIT_CODES.internal of src/errors.ts, written out because
// that module may not load (test/errors.test.ts checks them).
const fallbackCode = () => (argv[0] === "wal-fetch" && !existsSync("standby.signal") ? 126 : 70);
let cli;
try {
  cli = await import("../dist/src/cli/run.js");
} catch (error) {
  process.stderr.write(
    `pgha: internal error: cannot load the compiled CLI: ${error?.message ?? error}\n`,
  );
  process.stderr.write("HINT: run 'npm ci && npm run build' in the pgha directory\n");
  process.exit(fallbackCode());
}
// A reader that went away (`pgha prune | head -1`) makes every later write fail with
// EPIPE. The run goes on to its own end and exit code with its output dropped: a prune or
// backup stopped halfway by a closed pipe helps nobody, and the error must not reach
// `fatal`, whose own report would fail the same way again and again.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error?.code !== "EPIPE") throw error;
    stream.write = (_chunk, encoding, done) => {
      const callback = typeof encoding === "function" ? encoding : done;
      if (typeof callback === "function") process.nextTick(callback);
      return true;
    };
  });
}
// A run whose promise never settles (a stream that never ends) lets the event loop empty:
// Node.js then exits 13, which is one of pgha's exit codes ("no such backup"), silently.
// Any exit that did not go through process.exit is that case: an internal error.
let exitCalled = false;
const exit = process.exit.bind(process);
process.exit = (code) => {
  exitCalled = true;
  return exit(code);
};
process.on("exit", () => {
  if (exitCalled) return;
  process.stderr.write(
    "pgha: internal error: the command stopped without finishing (please report it)\n",
  );
  process.exitCode = fallbackCode();
});
let failing = false;
const fatal = async (error) => {
  // A failure while reporting a failure: the first one decides the exit code.
  if (failing) return;
  failing = true;
  process.exit(await cli.fatalExitCode(argv, error));
};
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

process.exit(await cli.run(argv));
