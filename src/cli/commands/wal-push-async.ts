/** wal-push --archive-async: the call's side of the background archiver. */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../../config/load.js";
import type { Logger } from "../../log.js";
import { type AsyncPushResult, pushThroughArchiver } from "../../wal/async-push.js";
import { spoolDir } from "../../wal/spool.js";
import { callFlags, startInBackground, thisCallId } from "../background.js";

/**
 * The archiver works on what PostgreSQL marked .ready in the data directory it runs in
 * (archive_command's working directory): anything else (a file pushed by hand, from
 * elsewhere) is stored by the call itself ("no-archiver").
 */
export async function pushAsync(
  path: string,
  config: Config,
  log: Logger,
): Promise<AsyncPushResult> {
  const pgdata = process.cwd();
  const name = basename(path);
  if (
    resolve(dirname(path)) !== resolve(pgdata, "pg_wal") ||
    !existsSync(join(pgdata, "pg_wal", "archive_status", `${name}.ready`))
  ) {
    return "no-archiver";
  }
  const id = thisCallId(1);
  return pushThroughArchiver(
    {
      pgdata,
      config,
      callId: id,
      log,
      startArchiver: () =>
        startInBackground({
          command: "archiver",
          spool: spoolDir(pgdata, "archive"),
          pgdata,
          flags: callFlags(1),
          callId: id,
        }),
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
    path,
  );
}
