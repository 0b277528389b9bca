import type { OptionsOf } from "../../config/flags.js";
import { openStore } from "../../storage/open-store.js";
import { pushWalFile } from "../../wal/push.js";
import { type CommandContext, loadContext } from "../context.js";

export async function walPushCommand(path: string, opts: OptionsOf<"wal-push">): Promise<number> {
  const { config, log }: CommandContext = loadContext(opts);
  const store = await openStore(config, log);
  await pushWalFile(
    { store, cluster: config.cluster, compression: config.compress, log, now: () => new Date() },
    path,
  );
  return 0;
}
