/**
 * wal-fetch's side of the restore prefetcher (src/wal/prefetcher.ts): deliver a prefetched
 * segment by a rename, and after every delivery make sure the prefetcher runs with this
 * call's settings and knows where recovery is.
 */
import { existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../../config/load.js";
import { recordCallId } from "../../wal/async-push.js";
import {
  ensureDir,
  holderAlive,
  readLock,
  readText,
  spoolDir,
  spoolRefusal,
  storeIdentity,
  writeAtomically,
} from "../../wal/spool.js";
import { callFlags, startInBackground, thisCallId } from "../background.js";

/**
 * The spool of the recovery this call serves, or undefined when it serves none: PostgreSQL
 * runs restore_command in the data directory (where bin/pgha looks too), and only while
 * recovery.signal or standby.signal is there. A call by hand elsewhere, or by another user
 * than the server's, neither uses nor starts a prefetcher.
 */
async function prefetchSpool(): Promise<{ pgdata: string; spool: string } | undefined> {
  const pgdata = process.cwd();
  if (!["recovery.signal", "standby.signal"].some((f) => existsSync(join(pgdata, f)))) {
    return undefined;
  }
  if ((await spoolRefusal(pgdata, process.getuid?.())) !== undefined) return undefined;
  return { pgdata, spool: spoolDir(pgdata, "prefetch") };
}

/** Renames a prefetched copy of name onto dest; false when there is none (for these settings). */
export async function deliverPrefetched(
  name: string,
  dest: string,
  config: Config,
): Promise<boolean> {
  try {
    const at = await prefetchSpool();
    if (!at || (await readText(join(at.spool, "config"))) !== storeIdentity(config)) return false;
    await rename(join(at.spool, name), dest);
    return true;
  } catch {
    return false; // not prefetched (yet), another file system, a spool we cannot read: fetch it
  }
}

/**
 * Tells the prefetcher where recovery is, and starts it (or one with these settings).
 * `onlyIfStarted`: only where a prefetcher already worked for this recovery (a miss in the
 * middle of one): a first call that fails leaves nothing behind.
 */
export async function followRecovery(
  name: string,
  config: Config,
  onlyIfStarted = false,
): Promise<void> {
  const at = await prefetchSpool();
  if (!at) return;
  if (onlyIfStarted && !existsSync(at.spool)) return;
  const { pgdata, spool } = at;
  await ensureDir(spool);
  await writeAtomically(join(spool, "want"), `${name}\n`);
  const holder = await readLock(spool);
  const alive = holder !== undefined && holderAlive(holder);
  const ours = (await readText(join(spool, "config"))) === storeIdentity(config);
  const id = thisCallId(2, config.configText);
  if (alive && ours) {
    await recordCallId(spool, id);
    return;
  }
  if (alive && holder) {
    // Other settings: stop it; a later call starts one with these.
    process.kill(holder.pid, "SIGTERM");
    return;
  }
  startInBackground({ command: "prefetcher", spool, pgdata, flags: callFlags(2), callId: id });
}
