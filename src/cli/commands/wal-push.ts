import type { OptionsOf } from "../../config/flags.js";
import { describeSystemError, PghaError } from "../../errors.js";
import { openStore } from "../../storage/open-store.js";
import { pushWalFile } from "../../wal/push.js";
import { repoFactsFor } from "../../wal/repo-facts.js";
import { type CommandContext, loadContext } from "../context.js";
import { HOT_COMMANDS } from "../hot-args.js";

/**
 * archive_command. With --archive-async the file is handed to the data directory's
 * archiver (started on demand) and this exits 0 once the archiver stored and verified it;
 * when no archiver can be started it is stored here, as without the setting.
 */
export async function walPushCommand(path: string, opts: OptionsOf<"wal-push">): Promise<number> {
  const { config, log }: CommandContext = loadContext(opts, HOT_COMMANDS["wal-push"].groups);
  if (config.archiveAsync) {
    const { pushAsync } = await import("./wal-push-async.js");
    // A spool that fails (unreadable, full) must not stop archiving: store the file here.
    const result = await pushAsync(path, config, log).catch((error: unknown) => {
      if (error instanceof PghaError) throw error; // the archiver's failure for this file
      return { bypass: `the archiver's spool failed: ${describeSystemError(error)}` };
    });
    if (result === "archived") return 0;
    log.warn(
      `${result === "no-archiver" ? "no archiver could be started" : result.bypass}: storing the file in this process`,
    );
  }
  const store = await openStore(config, log);
  await pushWalFile(
    {
      store,
      cluster: config.cluster,
      compression: config.compress,
      log,
      now: () => new Date(),
      facts: repoFactsFor(config, path, log),
    },
    path,
  );
  return 0;
}
