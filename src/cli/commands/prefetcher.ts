/** pgha prefetcher: the restore prefetcher of one data directory (src/wal/prefetcher.ts). */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { OptionsOf } from "../../config/flags.js";
import { stderrLogger } from "../../log.js";
import { livePostmasterPid, postmasterState } from "../../pg/postmaster-pid.js";
import { readIdentity } from "../../repository/identity.js";
import { openStore } from "../../storage/open-store.js";
import { fetchWalFile } from "../../wal/fetch.js";
import { Prefetcher } from "../../wal/prefetcher.js";
import { isWriteLeftover, releaseLock, removeFile } from "../../wal/spool.js";
import { takeSpoolFor } from "../background.js";
import { COMMANDS } from "../commands-table.js";
import { loadContext, logOutputOf } from "../context.js";

/** Downloads at once: the network, not the CPU, is what waits. */
const DOWNLOAD_JOBS = 4;

export async function prefetcherCommand(opts: OptionsOf<"prefetcher">): Promise<number> {
  const { config } = loadContext(opts, COMMANDS.prefetcher.groups);
  const log = stderrLogger(config.logLevel, "pgha prefetcher", logOutputOf(config));
  if (config.prefetch === 0) return 0;
  const taken = await takeSpoolFor("prefetcher", config, log);
  if (!taken) return 0;
  const { pgdata, spool } = taken;
  try {
    // Downloads and status files a killed prefetcher left half done.
    for (const name of await readdir(spool)) {
      if (isWriteLeftover(name)) await removeFile(join(spool, name));
    }
    const store = await openStore(config, log);
    const identity = await readIdentity(store, config.cluster);
    if (!identity) {
      log.info(`cluster '${config.cluster}' has no WAL in ${store.url}: nothing to prefetch`);
      return 0;
    }
    const layout = { listFirst: false };
    // The server whose restore_command started this process; a later server on the same
    // data directory (another pid) is another recovery, with its own wal-fetch calls.
    const server = await livePostmasterPid(pgdata);
    const prefetcher = new Prefetcher({
      spool,
      depth: config.prefetch,
      jobs: DOWNLOAD_JOBS,
      segmentSize: identity.walSegmentSize,
      fetch: async (name, dest) => {
        await fetchWalFile({ store, cluster: config.cluster, log, layout }, name, dest);
      },
      log,
      now: () => Date.now(),
      idleExitMs: opts.idleExit,
      // A file that cannot be read for a moment (EIO, EMFILE) is not a stopped server.
      serverRunning:
        server === undefined
          ? undefined
          : async () => {
              const now = await postmasterState(pgdata);
              return now === server || now === "unreadable";
            },
    });
    for (const signal of ["SIGTERM", "SIGINT"] as const)
      process.on(signal, () => prefetcher.stop());
    log.info(`prefetching ${config.prefetch} segments ahead for ${pgdata} from ${store.url}`);
    await prefetcher.run();
    log.info("stopped");
    return 0;
  } finally {
    await releaseLock(spool);
  }
}
