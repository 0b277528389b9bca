/**
 * planRestore: pure. From the catalog (backups, timeline histories, archived WAL) and a
 * request, the plan a restore follows, or the reasons it cannot succeed, before anything
 * is downloaded. Three concerns, one file each:
 *   choose-backup.ts      the backup and the timeline path
 *   wal-range.ts          the WAL segments from the backup to the target, and the gaps
 *   recovery-settings.ts  the recovery_target_* settings
 */
import type { BackupManifest } from "../repository/backup-manifest.js";
import { formatLsn } from "../wal/names.js";
import { chooseBackup } from "./choose-backup.js";
import type { RestoreFacts } from "./facts.js";
import { type Setting, targetSettings } from "./recovery-settings.js";
import type { PlanRefusal } from "./refusal.js";
import type { RestoreRequest } from "./target.js";
import { type WalRange, walRange } from "./wal-range.js";

export type { PlanRefusal } from "./refusal.js";

export interface RestorePlan {
  backup: BackupManifest;
  targetTimeline: number;
  path: { timeline: number; begin: string; end: string | null }[];
  wal: WalRange;
  notes: string[];
  /** recovery_target_* settings, in order; restore_command is added by the applier. */
  settings: Setting[];
  downloadBytes: number;
}

export type PlanOutcome = { ok: true; plan: RestorePlan } | { ok: false; refusal: PlanRefusal };

export function planRestore(facts: RestoreFacts, request: RestoreRequest): PlanOutcome {
  const chosen = chooseBackup(facts, request);
  if (!chosen.ok) return chosen;
  const { backup, targetTimeline, path, notes, ignoredHistories } = chosen.value;
  const wal = walRange(facts, backup, path, request.target);
  if (!wal.ok) return wal;
  return {
    ok: true,
    plan: {
      backup,
      targetTimeline,
      path: path.map((s) => ({
        timeline: s.timeline,
        begin: formatLsn(s.begin),
        end: s.end === null ? null : formatLsn(s.end),
      })),
      wal: wal.value,
      notes,
      // PostgreSQL's 'latest' would read the history files this plan does not follow
      // (and stop on one it cannot parse): name the timeline the plan chose instead.
      settings: targetSettings(
        ignoredHistories.length > 0 && request.timeline === "latest"
          ? { ...request, timeline: targetTimeline }
          : request,
        backup,
      ),
      downloadBytes: backup.storedBytes + wal.value.bytes,
    },
  };
}
