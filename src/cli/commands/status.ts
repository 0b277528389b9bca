/** pgha status and pgha metrics: thin layers over src/status. */
import type { OptionsOf } from "../../config/flags.js";
import { EXIT_CODES } from "../../errors.js";
import { collectStatuses } from "../../status/collect-status.js";
import { renderMetrics } from "../../status/metrics-text.js";
import { textfileName, writeTextfile } from "../../status/textfile.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { renderStatusText } from "../status-text.js";

/** Columns of the bar on a terminal: what is left beside its label, within reason. */
function barWidth(): number | undefined {
  if (!process.stdout.isTTY) return undefined;
  return Math.max(20, Math.min(100, (process.stdout.columns ?? 80) - 20));
}

export async function statusCommand(opts: OptionsOf<"status">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const { facts, statuses } = await collectStatuses(store, config, log, {
    allClusters: opts.allClusters,
    askServer: true,
    thresholds: {
      maxRpoMs: opts.maxRpo,
      maxBackupAgeMs: opts.maxBackupAge,
      maxDrillAgeMs: opts.maxDrillAge,
    },
    now: () => Date.now(),
  });
  if (opts.json) {
    const json = opts.allClusters ? statuses : (statuses[0] ?? null);
    // Unknown values are null, not missing: scripts read one shape.
    const text = JSON.stringify(json, (_, v: unknown) => (v === undefined ? null : v), 2);
    process.stdout.write(`${text}\n`);
  } else if (statuses.length === 0) {
    process.stdout.write(`${store.url} holds no clusters yet\n`);
  } else {
    const width = barWidth();
    const now = Date.now();
    for (const [i, status] of statuses.entries()) {
      const fact = facts[i];
      const marks =
        width === undefined || !fact
          ? undefined
          : {
              backups: fact.restore.backups,
              dumps: fact.dumps,
              drills: fact.drills,
            };
      process.stdout.write(renderStatusText(status, { now, barWidth: width, marks }));
    }
  }
  const breaches = statuses.flatMap((s) => s.breaches);
  for (const line of breaches) process.stderr.write(`pgha: breach: ${line}\n`);
  return breaches.length > 0 ? EXIT_CODES.thresholdBreached : 0;
}

export async function metricsCommand(opts: OptionsOf<"metrics">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const { statuses } = await collectStatuses(store, config, log, {
    allClusters: opts.allClusters,
    askServer: true,
    now: () => Date.now(),
  });
  const text = renderMetrics(statuses);
  if (opts.textfile === undefined) process.stdout.write(text);
  else {
    const name = textfileName(opts.allClusters ? undefined : config.cluster);
    await writeTextfile(opts.textfile, name, text);
  }
  return 0;
}
