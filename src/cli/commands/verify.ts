/** pgha verify: a thin layer over src/verify. */
import type { OptionsOf } from "../../config/flags.js";
import { EXIT_CODES } from "../../errors.js";
import { openStore } from "../../storage/open-store.js";
import type { Finding } from "../../verify/findings.js";
import { type VerifyReport, verifyRepository } from "../../verify/verify-repository.js";
import { loadContext } from "../context.js";

export async function verifyCommand(opts: OptionsOf<"verify">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const report = await verifyRepository(
    {
      store,
      cluster: config.cluster,
      log,
      now: () => new Date(),
      random: Math.random,
      jobs: config.parallel,
      window: { pitrWindow: config.retention.pitrWindow, zone: config.retention.zone },
    },
    { backupId: opts.backup, since: opts.since, sample: opts.sample },
  );
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(renderReport(report));
  return EXIT_CODES[report.exit];
}

function findingLine(f: Finding): string {
  return `${f.severity === "error" ? "ERROR" : "WARNING"} ${f.kind}: ${f.message}\n`;
}

function renderReport(report: VerifyReport): string {
  const lines = report.findings.map(findingLine);
  for (const b of report.backups) {
    if (b.failedChain.length > 0)
      lines.push(
        `backup ${b.id} FAILED with its chain: backup${b.failedChain.length === 1 ? "" : "s"} ${b.failedChain.join(", ")} of its chain ${b.failedChain.length === 1 ? "has" : "have"} errors\n`,
      );
  }
  const failed = (items: { ok: boolean }[]) => items.filter((i) => !i.ok).length;
  const sampled = report.scope.sample ? " (--sample)" : "";
  const unrestorable = report.backups.filter((b) => !b.restorable).length;
  lines.push(
    `backups: ${report.backups.length} checked, ${failed(report.backups)} with errors, ${unrestorable} not restorable; ` +
      `${sum(report.backups, "objects")} objects present, ${sum(report.backups, "hashed")} hashed${sampled}\n`,
  );
  if (report.scope.backup === null) {
    lines.push(
      `dump sets: ${report.dumpSets.length} checked, ${failed(report.dumpSets)} with errors; ` +
        `${sum(report.dumpSets, "objects")} objects present, ${sum(report.dumpSets, "hashed")} hashed${sampled}\n`,
    );
  }
  lines.push(`WAL: ${report.wal.objects} objects, ${report.wal.hashed} hashed${sampled}\n`);
  const verdict =
    report.errors === 0 ? "ok" : `FAILED: ${report.errors} error${report.errors === 1 ? "" : "s"}`;
  const warnings =
    report.warnings === 0 ? "" : `, ${report.warnings} warning${report.warnings === 1 ? "" : "s"}`;
  lines.push(`verify of cluster '${report.cluster}': ${verdict}${warnings}\n`);
  return lines.join("");
}

function sum(items: { objects: number; hashed: number }[], field: "objects" | "hashed"): number {
  return items.reduce((s, i) => s + i[field], 0);
}
