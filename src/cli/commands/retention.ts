/** pgha retention simulate and pgha prune. */
import { readFile } from "node:fs/promises";
import {
  checkItemChains,
  type PlannedItem,
  planRetention,
  type RetentionItem,
  RetentionPolicyError,
  type WindowReport,
} from "../../../retention/index.js";
import type { OptionsOf } from "../../config/flags.js";
import { describeSystemError, UsageError } from "../../errors.js";
import { applyPrune } from "../../prune/apply-prune.js";
import { gatherPruneFacts, planPrune, policyFrom } from "../../prune/plan-prune.js";
import { acquireLock } from "../../repository/lock.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { pruneItemJson } from "../output-contract.js";
import { reportNote } from "../report.js";
import { formatBytes, renderTable } from "../table.js";

/** The engine's policy errors are the user's: one line, exit 2. */
async function engine<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof RetentionPolicyError) {
      throw new UsageError(
        error.message,
        "see 'pgha retention simulate --help' for the policy options",
      );
    }
    throw error;
  }
}

function planRows(items: PlannedItem[]): string[][] {
  return items.map((p) => [p.keep ? "keep" : "DELETE", p.id, p.time, p.reasons.join(", ")]);
}

/** "3d 4h", "35s": a span in its two largest units (a zero second one is left out). */
function formatSpan(ms: number): string {
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  const first = units.findIndex(([, size]) => ms >= size);
  if (first === -1) return "0s";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of units.slice(first, first + 2)) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join(" ");
}

/** One line on what the plan does to the point-in-time window. */
export function describeWindow(window: WindowReport, now: string): string {
  const from = window.restorableFrom;
  if (!window.shortened && window.base !== null && !window.baseKept) {
    // --allow-shorter-window deletes the base, but an older kept backup (a pin, a chain's
    // full) still reaches the window's oldest second: the window holds without it.
    return `point-in-time window ${window.duration}: every second since ${window.start} stays restorable (from an older kept backup; its base, ${window.base}, is deleted by --allow-shorter-window)`;
  }
  if (!window.shortened) {
    return `point-in-time window ${window.duration}: every second since ${window.start} stays restorable (its base: ${window.base})`;
  }
  const becomes =
    from === null
      ? "nothing stays restorable"
      : `it becomes ${formatSpan(Date.parse(now) - Date.parse(from))}: restorable only since ${from}`;
  if (window.base !== null && !window.baseKept) {
    return `point-in-time window ${window.duration} SHORTENED (--allow-shorter-window deletes its base, ${window.base}): ${becomes}`;
  }
  return `point-in-time window ${window.duration}: no backup ended before ${window.start} yet, so ${becomes}`;
}

const ITEMS_HINT =
  'write a JSON array like [{"id": "b1", "time": "2026-11-20T02:00:00Z", "pinned": false}, {"id": "b2", "time": "2026-11-21T02:00:00Z", "type": "incr", "chain": ["b1"]}]';

export async function simulateCommand(
  file: string | undefined,
  opts: OptionsOf<"retention simulate">,
): Promise<number> {
  const { config } = loadContext(opts);
  let text: string;
  try {
    text = file === undefined || file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read ${file}: ${describeSystemError(error)}`,
      "give a JSON file of items, or - for stdin",
    );
  }
  let items: RetentionItem[];
  try {
    items = JSON.parse(text) as RetentionItem[];
    if (
      !Array.isArray(items) ||
      items.some(
        (i) =>
          typeof i?.id !== "string" ||
          typeof i?.time !== "string" ||
          (i.type !== undefined && i.type !== "full" && i.type !== "incr") ||
          (i.chain !== undefined &&
            (!Array.isArray(i.chain) || i.chain.some((c) => typeof c !== "string"))),
      )
    ) {
      throw new Error(
        'expected an array of {id, time, end?, pinned?, type?: "full"|"incr", chain?: [ids]}',
      );
    }
  } catch (error) {
    throw new UsageError(`the items are not valid: ${(error as Error).message}`, ITEMS_HINT);
  }
  try {
    checkItemChains(items, config.retention.zone);
  } catch (error) {
    if (!(error instanceof RetentionPolicyError)) throw error;
    throw new UsageError(`the items are not valid: ${error.message}`, ITEMS_HINT);
  }
  const plan = await engine(() =>
    planRetention(items, policyFrom(config.retention), opts.now, {
      duration: config.retention.pitrWindow,
      allowShorter: opts.allowShorterWindow,
    }),
  );
  if (opts.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
  else {
    process.stdout.write(renderTable(["", "id", "time", "why kept"], planRows(plan.items)));
    process.stdout.write(`keep ${plan.keep.length}, delete ${plan.delete.length}\n`);
    if (plan.window) process.stdout.write(`${describeWindow(plan.window, opts.now)}\n`);
  }
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function pruneCommand(opts: OptionsOf<"prune">): Promise<number> {
  const { config, log } = loadContext(opts);
  const { now } = opts;
  const policy = policyFrom(config.retention);
  await engine(() => planRetention([], policy, now)); // refuse a bad policy before taking locks
  const store = await openStore(config, log);
  const lockOptions = { ttlMs: 5 * 60_000, now: () => new Date(), log };
  // The same lock as backup, and the dump lock: no backup or dump runs while pruning.
  const cluster = await acquireLock(store, config.cluster, {
    ...lockOptions,
    name: "cluster",
    purpose: "prune",
  });
  try {
    const dumps = await acquireLock(store, config.cluster, {
      ...lockOptions,
      name: "dump",
      purpose: "prune",
    });
    try {
      const facts = await gatherPruneFacts(store, config.cluster, log);
      const plan = await engine(() =>
        planPrune(facts, policy, config.retention.pitrWindow, now, {
          allowShorterWindow: opts.allowShorterWindow,
        }),
      );
      const confirm = opts.confirm;
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              confirmed: confirm,
              backups: plan.backups.items.map(pruneItemJson),
              window: plan.backups.window,
              dumps: plan.dumps.items.map(pruneItemJson),
              wal: {
                horizon: plan.horizon,
                delete: plan.deleteWal.map((w) => w.key),
                kept: plan.keptWal,
              },
              debris: plan.deleteDebris.map((d) => d.key),
              leftovers: plan.deleteLeftovers.map((l) => l.path),
              freedBytes: plan.freedBytes,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        const out = (line: string) => process.stdout.write(`${line}\n`);
        out(`base backups: keep ${plan.backups.keep.length}, delete ${plan.backups.delete.length}`);
        if (plan.backups.items.length > 0)
          process.stdout.write(
            renderTable(["", "id", "started", "why kept"], planRows(plan.backups.items)),
          );
        if (plan.backups.window && plan.backups.items.length > 0)
          out(describeWindow(plan.backups.window, now));
        out(`dump sets: keep ${plan.dumps.keep.length}, delete ${plan.dumps.delete.length}`);
        if (plan.dumps.items.length > 0)
          process.stdout.write(
            renderTable(["", "id", "started", "why kept"], planRows(plan.dumps.items)),
          );
        out(
          plan.horizon.keepAll
            ? `WAL: all ${facts.wal.length} files kept (no backup to anchor a point-in-time window yet)`
            : `WAL: keep ${plan.keptWal} files (${plan.horizon.ranges.map((r) => `${r.from}..${r.to ?? "newest"}: ${r.reason}`).join("; ")}), delete ${plan.deleteWal.length}`,
        );
        if (plan.deleteDebris.length > 0)
          out(`leftovers of interrupted runs: delete ${plan.deleteDebris.length} objects`);
        if (plan.deleteLeftovers.length > 0)
          out(
            `temporary files of interrupted writes (.tmp-*, idle for an hour): delete ${plan.deleteLeftovers.length} (${formatBytes(plan.deleteLeftovers.reduce((s, l) => s + l.size, 0))})`,
          );
      }
      if (!confirm) {
        reportNote(
          `would free ${formatBytes(plan.freedBytes)}; nothing was deleted: add --confirm to delete`,
        );
        return 0;
      }
      const freed = await applyPrune(store, plan, log, {
        check() {
          cluster.check();
          dumps.check();
        },
      });
      reportNote(`freed ${formatBytes(freed)}`);
      return 0;
    } finally {
      await dumps.release().catch(() => undefined);
    }
  } finally {
    await cluster.release().catch(() => undefined);
  }
}
