/**
 * planRestore: pure. From the catalog (backups, timeline histories, archived WAL) and a
 * request, the plan a restore follows, or the reasons it cannot succeed, before anything
 * is downloaded. Three concerns, one file each:
 *   choose-backup.ts      the backup and the timeline path
 *   wal-range.ts          the WAL segments from the backup to the target, and the gaps
 *   recovery-settings.ts  the recovery_target_* settings
 */
import { chainIds, missingChainMember } from "../backup/chain-manifest.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import { formatLsn } from "../wal/names.js";
import { chooseBackup } from "./choose-backup.js";
import type { RestoreFacts } from "./facts.js";
import { type Setting, targetSettings } from "./recovery-settings.js";
import { type PlanRefusal, refuse } from "./refusal.js";
import type { RestoreRequest } from "./target.js";
import { type WalRange, walRange } from "./wal-range.js";

export type { PlanRefusal } from "./refusal.js";

export interface RestorePlan {
  backup: BackupManifest;
  /** The backups an incremental backup is restored with, oldest first ([] for a full). */
  chain: BackupManifest[];
  targetTimeline: number;
  path: { timeline: number; begin: string; end: string | null }[];
  wal: WalRange;
  notes: string[];
  /** recovery_target_* settings, in order; restore_command is added by the applier. */
  settings: Setting[];
  downloadBytes: number;
}

export type PlanOutcome = { ok: true; plan: RestorePlan } | { ok: false; refusal: PlanRefusal };

export function planRestore(given: RestoreFacts, request: RestoreRequest): PlanOutcome {
  // An incremental backup restores only with its whole chain: one whose chain lacks a
  // backup (missing, or a manifest that could not be read) is refused when named, and
  // passed over, with a note, when the plan chooses.
  const read = new Map(given.backups.map((b) => [b.id, b]));
  const lacking = (b: BackupManifest) => missingChainMember(b, read);
  const broken = given.backups.filter((b) => lacking(b) !== undefined);
  const facts =
    request.backupId === undefined && broken.length > 0
      ? { ...given, backups: given.backups.filter((b) => lacking(b) === undefined) }
      : given;
  const chosen = chooseBackup(facts, request);
  if (!chosen.ok) {
    if (broken.length > 0 && facts !== given)
      chosen.refusal.reasons.push(`${describeBroken(broken, lacking)}: not restorable`);
    return chosen;
  }
  const { backup, targetTimeline, path, ignoredHistories } = chosen.value;
  const notes = [...chosen.value.notes];
  const missing = lacking(backup);
  if (missing !== undefined)
    return refuse(
      `backup ${backup.id} is incremental and needs backup ${missing} of its chain (${chainIds(backup).join(", ")}), which is missing or damaged`,
    );
  if (facts !== given)
    notes.push(`${describeBroken(broken, lacking)}: passed over, not restorable`);
  const chain = chainIds(backup).map((id) => read.get(id) as BackupManifest);
  const wal = walRange(facts, backup, path, request.target);
  if (!wal.ok) return wal;
  return {
    ok: true,
    plan: {
      backup,
      chain,
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
      // At most: objects from which nothing is taken are not downloaded.
      downloadBytes: [...chain, backup].reduce((n, b) => n + b.storedBytes, 0) + wal.value.bytes,
    },
  };
}

function describeBroken(
  broken: BackupManifest[],
  lacking: (b: BackupManifest) => string | undefined,
): string {
  return broken.map((b) => `backup ${b.id} lacks ${lacking(b)} of its chain`).join("; ");
}
