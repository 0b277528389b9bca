/**
 * `restore find`: which committed transactions dropped, truncated, or deleted many rows
 * from a relation, read from the archived WAL after a backup. The backup is the newest
 * that ended at or before --since (default: the oldest, the start of the point-in-time
 * window) on the path of the latest timeline; its relation map names the relations, and
 * its WAL range (restore/wal-range.ts, as a restore to the end of the archive reads it) is
 * streamed through pg_waldump (scan-wal.ts). Findings come newest first, each with the
 * newest backup a restore to just before it can start from.
 */
import { PghaError, RefusedError } from "../errors.js";
import type { Logger } from "../log.js";
import { findPgWaldump } from "../pg/client-tools.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import { unknownClusterError } from "../repository/clusters.js";
import { refusalError } from "../restore/apply.js";
import { chooseBackup } from "../restore/choose-backup.js";
import { gatherRestoreFacts, type RestoreFacts } from "../restore/facts.js";
import { planRestore, type RestorePlan } from "../restore/plan.js";
import type { RestoreRequest } from "../restore/target.js";
import type { ObjectStore } from "../storage/object-store.js";
import { fetchWalFile } from "../wal/fetch.js";
import { formatLsn, parseLsn, parseSegmentFileName, segmentNumber } from "../wal/names.js";
import { readRelationMap } from "./relation-map.js";
import {
  type Finding,
  type FindingKind,
  type RelationQuery,
  RelationTracker,
} from "./relation-tracker.js";
import { CHUNK, MAX_SEGMENTS_ON_DISK, scanArchivedWal } from "./scan-wal.js";
import { decodeRecord, newTupleOf, readRecordBytes } from "./wal-record.js";
import { parseWaldumpLine } from "./waldump-line.js";

export interface FindRequest {
  kind: Exclude<FindingKind, "rewrite">;
  query: RelationQuery;
  /** Epoch ms; findings committed before/after are left out. */
  since: number | undefined;
  until: number | undefined;
  minRows: number;
}

export interface FindDeps {
  store: ObjectStore;
  cluster: string;
  log: Logger;
  /** --pg-bin, else the backup's major's Debian directory, else PATH. */
  pgBin: string | undefined;
  tempRoot: string;
  /** Fetches one segment into a file (default: wal/fetch.ts on this thread, not fsynced). */
  fetchSegment?: (name: string, dest: string) => Promise<unknown>;
}

export interface LocatedFinding extends Finding {
  /** The newest backup that ended before the commit: where a restore to just before it starts. */
  backup: string | undefined;
}

export interface FindResult {
  backup: BackupManifest;
  /** The WAL read: first and last segment, how many. */
  scanned: { from: string; first: string; last: string; segments: number };
  findings: LocatedFinding[];
}

const LATEST: RestoreRequest = {
  target: { kind: "latest" },
  timeline: "latest",
  exclusive: false,
  action: "pause",
  backupId: undefined,
};

/** The plan of a restore to the end of the archive from the backup find starts at. */
export function chooseScan(facts: RestoreFacts, since: number | undefined): RestorePlan {
  if (since !== undefined) {
    const at = planRestore(facts, {
      ...LATEST,
      target: { kind: "time", at: since, text: new Date(since).toISOString() },
    });
    if (at.ok) {
      const plan = planRestore(facts, { ...LATEST, backupId: at.plan.backup.id });
      if (!plan.ok) throw refusalError(plan.refusal);
      return plan.plan;
    }
    // A restore to --since is refused when it lies past the archive's end (an idle
    // cluster, `--since -10m`): the newest usable backup that ended by then, not the
    // oldest, is still where reading starts.
    const endedBy = [...facts.backups]
      .filter((b) => Date.parse(b.stopTime) <= since)
      .sort((a, b) => {
        const d = (parseLsn(b.stopLsn) ?? 0n) - (parseLsn(a.stopLsn) ?? 0n);
        return d < 0n ? -1 : d > 0n ? 1 : 0;
      });
    for (const backup of endedBy) {
      const plan = planRestore(facts, { ...LATEST, backupId: backup.id });
      if (plan.ok) return plan.plan;
    }
  }
  // The start of the window: the oldest backup a restore along the latest path can use.
  const oldestFirst = [...facts.backups].sort((a, b) => {
    const d = (parseLsn(a.stopLsn) ?? 0n) - (parseLsn(b.stopLsn) ?? 0n);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  let refusal: ReturnType<typeof planRestore> | undefined;
  for (const backup of oldestFirst) {
    const plan = planRestore(facts, { ...LATEST, backupId: backup.id });
    if (plan.ok) return plan.plan;
    refusal ??= plan;
  }
  if (refusal && !refusal.ok) throw refusalError(refusal.refusal);
  throw new PghaError("unrestorable", "the repository has no backups of this cluster", {
    hint: "find reads the WAL archived after a backup: take one with 'pgha backup'",
  });
}

export async function findInArchive(deps: FindDeps, request: FindRequest): Promise<FindResult> {
  const began = Date.now();
  const facts = await gatherRestoreFacts(deps.store, deps.cluster, deps.log);
  deps.log.debug(`restore find: catalog read in ${Date.now() - began} ms`);
  if (facts.backups.length === 0) {
    const unknown = await unknownClusterError(deps.store, deps.cluster);
    if (unknown) throw unknown;
  }
  const plan = chooseScan(facts, request.since);
  const backup = plan.backup;
  if (backup.pgVersionNum < 150000)
    throw new RefusedError(
      `backup ${backup.id} is of PostgreSQL ${backup.pgVersion}: restore find reads WAL of PostgreSQL 15 and newer`,
      "give a target by time instead (restore --target-time)",
    );
  const pgWaldump = await findPgWaldump(deps.pgBin, backup.pgVersionNum);
  const map = await readRelationMap(deps.store, deps.cluster, backup.id);
  if (!map || map.databases.length === 0)
    throw new RefusedError(
      `backup ${backup.id} has no relation map (it was taken by an older pgha): its WAL cannot be named`,
      "take a new backup with this pgha, or give --since after a backup that has one",
    );
  deps.log.debug(
    `restore find: relation map of backup ${backup.id} read at ${Date.now() - began} ms`,
  );
  const kinds = new Set<FindingKind>([request.kind]);
  const tracker = new RelationTracker(map, {
    kinds,
    query: request.query,
    minRows: request.minRows,
  });
  const size = backup.walSegmentSize;
  const startLsn = RelationTracker.startLsn(map) ?? parseLsn(backup.startLsn) ?? 0n;
  const startSeg = startLsn / BigInt(size);
  const segments = plan.wal.segments.filter((name) => {
    const file = parseSegmentFileName(name);
    return file !== undefined && segmentNumber(file, size) >= startSeg;
  });
  const findings: Finding[] = [];
  const tupleOf =
    (read: Parameters<Parameters<typeof scanArchivedWal>[2]>[1]) =>
    (lsn: string, op: "insert" | "update", off: number) => {
      try {
        return newTupleOf(decodeRecord(readRecordBytes(read, parseLsn(lsn) ?? 0n, size)), op, off);
      } catch (error) {
        deps.log.warn(`cannot read the pg_class change at ${lsn}: ${(error as Error).message}`);
        return undefined;
      }
    };
  const wantHeap = (key: string, op: string) => tracker.wantsHeap(key, op);
  const wantDeletes = request.kind === "delete";
  const pgClassNeedles = tracker.pgClassFileKeys().map((key) => ` rel ${key} `);
  const outcome = await scanArchivedWal(
    deps.fetchSegment ??
      ((name, dest) =>
        fetchWalFile(
          { store: deps.store, cluster: deps.cluster, log: deps.log, durable: false },
          name,
          dest,
        )),
    {
      segments,
      segmentSize: size,
      startLsn,
      timeline: plan.targetTimeline,
      pgWaldump,
      rmgrs: ["Heap", "Transaction"],
      // Every transaction's end; pg_class changes; heap DELETEs when they are counted.
      needles: [
        "rmgr: Transaction ",
        ...pgClassNeedles,
        ...(wantDeletes ? [" desc: DELETE "] : []),
      ],
      tempRoot: deps.tempRoot,
    },
    (text, read) => {
      // Commits of transactions that changed nothing followed here are passed over before
      // being taken apart (as are heap lines that only matched a needle elsewhere).
      if (text.startsWith("rmgr: Heap ")) {
        if (
          !(wantDeletes && text.includes("desc: DELETE ")) &&
          !pgClassNeedles.some((n) => text.includes(n))
        )
          return undefined;
      } else if (request.until === undefined && !tracker.hasPending()) return undefined;
      const line = parseWaldumpLine(text, wantHeap);
      if (!line) return undefined;
      if (
        line.kind === "end" &&
        request.until !== undefined &&
        Date.parse(line.time) > request.until
      )
        return "stop";
      findings.push(...tracker.take(line, tupleOf(read)));
      return undefined;
    },
    (message) => deps.log.debug(message),
  );
  deps.log.debug(
    `restore find: ${outcome.lines} pg_waldump lines from ${outcome.segments} segments, done at ${Date.now() - began} ms`,
  );
  for (const lsn of outcome.unread) {
    deps.log.warn(
      `restore find: a WAL record going on past ${lsn} is longer than restore find follows (${MAX_SEGMENTS_ON_DISK - CHUNK} segments): a commit in it is not listed`,
    );
  }
  const located = findings
    .filter((f) => request.since === undefined || Date.parse(f.time) >= request.since)
    .map((f): LocatedFinding => {
      // The newest backup that ended before the commit record (a restore can stop there).
      const before = formatLsn((parseLsn(f.lsn) ?? 1n) - 1n);
      const chosen = chooseBackup(facts, { ...LATEST, target: { kind: "lsn", lsn: before } });
      return { ...f, backup: chosen.ok ? chosen.value.backup.id : undefined };
    })
    .reverse();
  return {
    backup,
    scanned: {
      from: formatLsn(startLsn),
      first: segments[0] ?? backup.startWal,
      last: segments.at(-1) ?? backup.startWal,
      segments: segments.length,
    },
    findings: located,
  };
}
