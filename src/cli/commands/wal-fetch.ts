import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { OptionsOf } from "../../config/flags.js";
import { EXIT_CODES, NotFoundError, PghaError } from "../../errors.js";
import { type CommandContext, loadContext } from "../context.js";
import { HOT_COMMANDS } from "../hot-args.js";
import { reportError, reportNote } from "../report.js";

/**
 * restore_command exit codes (PostgreSQL's rules, see README):
 *   0  delivered and verified
 *   1  not in the repository ("not available": PostgreSQL tries pg_wal, then ends or waits)
 *   126 anything else during archive recovery: PostgreSQL stops instead of ending recovery
 *       early at the wrong point; with standby.signal present, 1, and the standby retries.
 */
export async function walFetchCommand(
  name: string,
  dest: string,
  opts: OptionsOf<"wal-fetch">,
): Promise<number> {
  let context: CommandContext | undefined;
  try {
    context = loadContext(opts, HOT_COMMANDS["wal-fetch"].groups);
    const { config, log } = context;
    const prefetch = config.prefetch > 0 && /^[0-9A-F]{24}$/.test(name);
    const follow = prefetch ? await import("./wal-fetch-prefetch.js") : undefined;
    // A prefetcher that cannot be started costs speed, never the restore.
    const followRecovery = (onlyIfStarted = false) =>
      follow?.followRecovery(name, config, onlyIfStarted).catch((error: unknown) => {
        log.debug(`prefetcher: ${(error as Error).message}`);
      });
    if (await follow?.deliverPrefetched(name, resolve(dest), config)) {
      await followRecovery();
      return EXIT_CODES.ok;
    }
    // A miss in a recovery the prefetcher follows: it goes on with the segments after this
    // one while this call fetches it.
    await followRecovery(true);
    const { openStore } = await import("../../storage/open-store.js");
    const { fetchWalFile } = await import("../../wal/fetch.js");
    const store = await openStore(config, log);
    await fetchWalFile({ store, cluster: config.cluster, log }, name, resolve(dest));
    await followRecovery();
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof NotFoundError) {
      // Expected at the end of every recovery: say it quietly.
      context?.log.debug(`${name} is not in the repository`);
      return EXIT_CODES.notFound;
    }
    reportError(error);
    // --pgdata or PGHA_PGDATA, else the working directory, never the config file's pgdata:
    // a config shared on the host names the server pgha backs up (a standby, say), not the
    // copy being recovered here, and its standby.signal would turn a failure into "not
    // available", ending this recovery early.
    return failureExitCode(opts.settings.pgdata, error instanceof PghaError);
  }
}

/**
 * The exit code for a wal-fetch that failed for any reason but "not found": 1 when
 * standby.signal is in the data directory (the standby retries), else 126 (recovery stops).
 * Also used by bin/pgha for errors that escape everything else.
 */
export function failureExitCode(pgdata: string | undefined, known = false): number {
  const dir = resolve(pgdata ?? process.env.PGHA_PGDATA ?? ".");
  if (existsSync(join(dir, "standby.signal"))) {
    reportNote("standby.signal is present: exiting 1 so the standby retries");
    return EXIT_CODES.notFound;
  }
  reportNote(
    `exiting ${EXIT_CODES.failClosed} so PostgreSQL stops recovery instead of ending it early${known ? "" : " (internal error)"}`,
  );
  return EXIT_CODES.failClosed;
}
