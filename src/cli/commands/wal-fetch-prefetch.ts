/**
 * wal-fetch's side of the restore prefetcher (src/wal/prefetcher.ts): deliver a prefetched
 * segment by a rename, and after every delivery make sure the prefetcher runs with this
 * call's settings and knows where recovery is.
 */
import { rename } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Config } from "../../config/load.js";
import { recordCallId } from "../../wal/async-push.js";
import {
  ensureDir,
  holderAlive,
  readLock,
  readText,
  spoolDir,
  storeIdentity,
  writeAtomically,
} from "../../wal/spool.js";
import { callFlags, startInBackground, thisCallId } from "../background.js";

function prefetchSpool(config: Config): { pgdata: string; spool: string } {
  // PostgreSQL runs restore_command in the data directory.
  const pgdata = resolve(config.pgdata ?? ".");
  return { pgdata, spool: spoolDir(pgdata, "prefetch") };
}

/** Renames a prefetched copy of name onto dest; false when there is none (for these settings). */
export async function deliverPrefetched(
  name: string,
  dest: string,
  config: Config,
): Promise<boolean> {
  const { spool } = prefetchSpool(config);
  if ((await readText(join(spool, "config"))) !== storeIdentity(config)) return false;
  try {
    await rename(join(spool, name), dest);
    return true;
  } catch {
    return false; // not prefetched (yet), or another file system: fetch it as usual
  }
}

/** After name was delivered: tell the prefetcher, start it (or one with these settings). */
export async function followRecovery(name: string, config: Config): Promise<void> {
  const { pgdata, spool } = prefetchSpool(config);
  await ensureDir(spool);
  await writeAtomically(join(spool, "want"), `${name}\n`);
  const holder = await readLock(spool);
  const alive = holder !== undefined && holderAlive(holder);
  const ours = (await readText(join(spool, "config"))) === storeIdentity(config);
  const id = thisCallId(2);
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
