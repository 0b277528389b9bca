/** wal-push --archive-async: the call's side of the background archiver. */
import type { Config } from "../../config/load.js";
import type { Logger } from "../../log.js";
import { type AsyncPushResult, pushThroughArchiver } from "../../wal/async-push.js";
import { spoolDir } from "../../wal/spool.js";
import { callFlags, startInBackground, thisCallId } from "../background.js";

export function pushAsync(path: string, config: Config, log: Logger): Promise<AsyncPushResult> {
  // PostgreSQL runs archive_command in the data directory.
  const pgdata = process.cwd();
  const id = thisCallId(1, config.configText);
  return pushThroughArchiver(
    {
      pgdata,
      config,
      callId: id,
      uid: process.getuid?.(),
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
