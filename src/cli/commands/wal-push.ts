import type { OptionsOf } from "../../config/flags.js";
import { openStore } from "../../storage/open-store.js";
import { pushWalFile } from "../../wal/push.js";
import { repoFactsCache } from "../../wal/repo-facts.js";
import { type CommandContext, loadContext } from "../context.js";

export async function walPushCommand(path: string, opts: OptionsOf<"wal-push">): Promise<number> {
  const { config, log }: CommandContext = loadContext(opts);
  const store = await openStore(config, log);
  // The same bucket and prefix behind another endpoint is another repository.
  const repository = `${config.repo.url}${config.repo.kind === "s3" && config.s3.endpoint ? ` at ${config.s3.endpoint}` : ""}`;
  await pushWalFile(
    {
      store,
      cluster: config.cluster,
      compression: config.compress,
      log,
      now: () => new Date(),
      facts: repoFactsCache(path, repository, config.cluster, log),
    },
    path,
  );
  return 0;
}
