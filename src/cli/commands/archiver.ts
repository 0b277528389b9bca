/** pgha archiver: the asynchronous archiver of one data directory (src/wal/archiver.ts). */
import { statSync } from "node:fs";
import { join } from "node:path";
import type { OptionsOf } from "../../config/flags.js";
import { stderrLogger } from "../../log.js";
import { openStore } from "../../storage/open-store.js";
import { Archiver } from "../../wal/archiver.js";
import { PreparePool } from "../../wal/prepare-pool.js";
import { storeWalFile } from "../../wal/push.js";
import { repoFactsFor } from "../../wal/repo-facts.js";
import { holdsLock, releaseLock } from "../../wal/spool.js";
import { takeSpoolFor } from "../background.js";
import { COMMANDS } from "../commands-table.js";
import { loadContext, logOutputOf } from "../context.js";

export async function archiverCommand(opts: OptionsOf<"archiver">): Promise<number> {
  const { config } = loadContext(opts, COMMANDS.archiver.groups);
  const background = opts.idleExit !== undefined;
  const log = stderrLogger(config.logLevel, "pgha archiver", logOutputOf(config));
  const taken = await takeSpoolFor("archiver", config, log);
  if (!taken) return 0;
  const { pgdata, spool } = taken;
  // --jobs: files prepared (read, hashed, compressed) at once, and twice that stored at once.
  const jobs = config.parallel;
  const pool = new PreparePool(jobs, config.compress);
  try {
    const store = await openStore(config, log);
    // What pushes learned about the repository (identity, conditional writes): fewer requests.
    const facts = repoFactsFor(config, join(pgdata, "pg_wal", "archiver"), log);
    const changed = configChangeWatch(config.configFile);
    const archiver = new Archiver({
      pgdata,
      spool,
      prepare: (path) => pool.prepare(path),
      store: (prepared) =>
        storeWalFile(
          {
            store,
            cluster: config.cluster,
            compression: config.compress,
            log,
            now: () => new Date(),
            facts,
          },
          prepared,
        ),
      jobs,
      log,
      now: () => Date.now(),
      idleExitMs: opts.idleExit,
      backlogWarnBytes: config.archiveBacklogWarnBytes,
      shouldStop: () => {
        if (!holdsLock(spool)) {
          log.info(
            "the spool lock no longer names this process: stopping (one archiver per spool)",
          );
          return true;
        }
        if (!changed()) return false;
        log.info(
          `${config.configFile} changed: stopping (the next wal-push starts an archiver with the new settings)`,
        );
        return true;
      },
    });
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        log.info(`${signal}: stopping after the files in flight`);
        archiver.stop();
      });
    }
    log.info(
      `archiving ${pgdata} to ${store.url} (cluster ${config.cluster}, ${jobs} jobs${background ? `, exits after ${Math.round((opts.idleExit ?? 0) / 1000)}s idle` : ""})`,
    );
    await archiver.run();
    log.info("stopped");
    return 0;
  } finally {
    await pool.close();
    await releaseLock(spool);
  }
}

/** True once the config file's modification time differs from when the process started. */
function configChangeWatch(file: string | undefined): () => boolean {
  if (file === undefined) return () => false;
  const mtime = () => {
    try {
      return statSync(file).mtimeMs;
    } catch {
      return -1;
    }
  };
  const first = mtime();
  return () => mtime() !== first;
}
