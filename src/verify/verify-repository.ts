/**
 * `pgha verify`: checks a cluster's repository the way a restore would find it, before a
 * restore does.
 *
 * - WAL continuity over the point-in-time window of every timeline, from listings alone
 *   (wal-continuity.ts); each backup's WAL from its start to its end (restorable or not).
 * - Every object of every backup and dump set: present with its manifest's size (from a
 *   listing), then read and hashed (backups: the stored bytes against storedSha256; dump
 *   sets: the decompressed bytes against sha256), all of them or a --sample of each.
 * - WAL objects: decompressed and hashed against their metadata (and a content-addressed
 *   key against its name), all of them, those stored since --since, or a --sample.
 *
 * --backup ID narrows everything to one backup and its chain (an increment is only as
 * good as the backups it is restored with): their objects, and the WAL their restores to
 * their ends replay (the window's continuity and dump sets are not checked). What is wrong
 * with a chain member's data is reported for every checked backup built on it. --since T
 * narrows the objects read to backups and dump sets that ended, and WAL stored, at or
 * after T (continuity is still checked over the whole window: it costs listings only); a
 * chain member older than T counts as its last verify found it.
 *
 * The result of each backup and dump set checked is recorded beside its manifest
 * (verify-record.ts) for `backup list`. Nothing else is written.
 */
import { chainIds } from "../backup/chain-manifest.js";
import { runEach } from "../backup/job-pool.js";
import { type ExitCodeName, IntegrityError, isDamagedObject, RefusedError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  type BackupManifest,
  listBackupIds,
  readBackupManifest,
  readBackupSummary,
} from "../repository/backup-manifest.js";
import { unknownClusterError } from "../repository/clusters.js";
import { type DumpManifest, listDumpIds, readDumpManifest } from "../repository/dump-manifest.js";
import {
  backupManifestKey,
  backupPrefix,
  backupVerifyKey,
  dumpManifestKey,
  dumpPrefix,
  dumpVerifyKey,
  walNameOfKey,
  walPrefix,
} from "../repository/keys.js";
import { decodeContentMeta } from "../repository/object-meta.js";
import {
  readFailedVerifies,
  type VerifyRecord,
  writeVerifyRecord,
} from "../repository/verify-record.js";
import { gatherArchiveFacts } from "../restore/facts.js";
import { type ObjectStore, sizeFits } from "../storage/object-store.js";
import { parseLsn, parseWalFileName, segmentStartLsn } from "../wal/names.js";
import { checkSegmentHeader } from "../wal/page-header.js";
import { damagesData, failedMembers, inheritedFindings } from "./chain-verdict.js";
import { type Finding, verifyExit } from "./findings.js";
import { readDigest } from "./read-digest.js";
import { pickSample, type Sample } from "./sample.js";
import { unfinishedFindings } from "./unfinished.js";
import { backupRestorability, checkWalContinuity, type Restorability } from "./wal-continuity.js";

export interface VerifyRequest {
  backupId: string | undefined;
  /** Milliseconds since the epoch. */
  since: number | undefined;
  sample: Sample | undefined;
}

export interface VerifyDeps {
  store: ObjectStore;
  cluster: string;
  log: Logger;
  now: () => Date;
  /** Chooses the --sample (Math.random; fixed in tests). */
  random: () => number;
  /** How many objects are read at once. */
  jobs: number;
  /** The retention's point-in-time window: a gap before its base is WAL prune deletes. */
  window?: { pitrWindow: string; zone?: string | undefined } | undefined;
}

export interface ItemVerdict {
  id: string;
  ok: boolean;
  objects: number;
  hashed: number;
}

export interface BackupVerdict extends ItemVerdict {
  restorable: boolean;
  gaps: string[];
  /** Members of its chain with errors in their data: it fails with them. */
  failedChain: string[];
  /** No error in its own data nor its chain's (VerifyRecord.dataOk): what builds on it. */
  dataOk: boolean;
}

export interface VerifyReport {
  cluster: string;
  startTime: string;
  stopTime: string;
  scope: { backup: string | null; since: string | null; sample: Sample | null };
  backups: BackupVerdict[];
  dumpSets: ItemVerdict[];
  wal: { objects: number; hashed: number };
  findings: Finding[];
  errors: number;
  warnings: number;
  exit: ExitCodeName;
}

/** An object a manifest lists: where, how big in the repository. */
interface Listed {
  key: string;
  storedSize: number;
}

export async function verifyRepository(
  deps: VerifyDeps,
  request: VerifyRequest,
): Promise<VerifyReport> {
  const { store, cluster, log } = deps;
  const startTime = deps.now().toISOString();
  const unknown = await unknownClusterError(store, cluster);
  if (unknown) throw unknown;
  const findings: Finding[] = [];

  const ids = await listBackupIds(store, cluster);
  // A named backup that is not there is "not found", before anything is read.
  if (request.backupId !== undefined && !ids.includes(request.backupId))
    await readBackupManifest(store, cluster, request.backupId);
  // Without their file lists (verify checks objects, not files): one manifest of 100,000
  // files at a time in memory, not all of them.
  const backups: BackupManifest[] = [];
  for (const id of ids) {
    try {
      backups.push(await readBackupSummary(store, cluster, id));
    } catch (error) {
      if (!isDamagedObject(error)) throw error;
      findings.push(manifestFinding(backupManifestKey(cluster, id), error, { backup: id }));
    }
  }
  if (request.backupId === undefined)
    findings.push(...(await unfinishedFindings(store, cluster, deps.now())));
  log.info(`verify: reading the archive of cluster '${cluster}'`);
  const facts = await gatherArchiveFacts(store, cluster, backups);
  if (request.backupId === undefined)
    findings.push(
      ...checkWalContinuity(
        facts,
        deps.window === undefined ? undefined : { ...deps.window, now: startTime },
      ),
    );

  const inScope = (stopTime: string) =>
    request.since === undefined || Date.parse(stopTime) >= request.since;
  const named = backups.find((b) => b.id === request.backupId);
  const withChain = new Set(named ? [...chainIds(named), named.id] : []);
  const checked = backups.filter((b) =>
    request.backupId !== undefined ? withChain.has(b.id) : inScope(b.stopTime),
  );
  const chains = new Map(checked.map((b) => [b.id, chainIds(b)]));
  const restorability = new Map<string, Restorability>();
  const backupVerdicts: BackupVerdict[] = [];
  for (const backup of checked) {
    const restorable = backupRestorability(facts, backup);
    const own: Finding[] = [];
    if (!restorable.restorable) {
      own.push({
        kind: "unrestorable",
        severity: "error",
        object: backup.id,
        backup: backup.id,
        message: `backup ${backup.id} cannot be restored: ${restorable.reasons.join("; ")}`,
      });
    }
    log.info(`verify: backup ${backup.id}: ${backup.objects.length} objects`);
    const objects = await checkObjects(
      deps,
      request.sample,
      backupPrefix(cluster, backup.id),
      backup.objects,
      `backup ${backup.id}`,
      async (entry) => {
        const digest = await readDigest(store, entry.key, undefined);
        if (digest === "missing" || !("storedSize" in digest)) return digest;
        return digest.storedSize === entry.storedSize && digest.storedSha256 === entry.storedSha256
          ? "ok"
          : `its sha256 is ${digest.storedSha256}, backup ${backup.id}'s manifest says ${entry.storedSha256}`;
      },
    );
    if (
      objects.findings.length > 0 &&
      (await deletedMeanwhile(deps, backupManifestKey(cluster, backup.id), `backup ${backup.id}`))
    )
      continue;
    restorability.set(backup.id, restorable);
    findings.push(...own);
    for (const finding of objects.findings) findings.push({ ...finding, backup: backup.id });
    backupVerdicts.push({
      id: backup.id,
      ok: false,
      objects: backup.objects.length,
      hashed: objects.hashed,
      restorable: restorable.restorable,
      gaps: restorable.gaps,
      failedChain: [],
      dataOk: false,
    });
  }

  const dumpVerdicts: ItemVerdict[] = [];
  if (request.backupId === undefined) {
    for (const id of await listDumpIds(store, cluster)) {
      let dump: DumpManifest;
      try {
        dump = await readDumpManifest(store, cluster, id);
      } catch (error) {
        if (!isDamagedObject(error)) throw error;
        findings.push(manifestFinding(dumpManifestKey(cluster, id), error, { dumpSet: id }));
        continue;
      }
      if (!inScope(dump.stopTime)) continue;
      const listed = [dump.globals, ...dump.databases];
      log.info(`verify: dump set ${id}: ${listed.length} objects`);
      const objects = await checkObjects(
        deps,
        request.sample,
        dumpPrefix(cluster, id),
        listed,
        `dump set ${id}`,
        async (entry) => {
          const digest = await readDigest(store, entry.key, entry.compression);
          if (digest === "missing" || !("storedSize" in digest)) return digest;
          return digest.raw?.size === entry.rawSize && digest.raw?.sha256 === entry.sha256
            ? "ok"
            : `it decompresses to ${digest.raw?.size} bytes of sha256 ${digest.raw?.sha256}, dump set ${id}'s manifest says ${entry.rawSize} bytes of ${entry.sha256}`;
        },
      );
      if (
        objects.findings.length > 0 &&
        (await deletedMeanwhile(deps, dumpManifestKey(cluster, id), `dump set ${id}`))
      )
        continue;
      for (const finding of objects.findings) findings.push({ ...finding, dumpSet: id });
      dumpVerdicts.push({ id, ok: false, objects: listed.length, hashed: objects.hashed });
    }
  }

  const wal = await checkWal(deps, request, restorability, backups, findings);

  // A backup is ok when nothing is wrong with it, its WAL, or the WAL its restore replays.
  const badWal = new Set(
    findings
      .filter((f) => f.severity === "error" && f.kind !== "unrestorable")
      .map((f) => f.object),
  );
  // ... and nothing is wrong with the data of a backup of its chain. A member this run did
  // not read (it ended before --since) is as its last verify found it.
  const unread = [...new Set([...chains.values()].flat())].filter((id) => !chains.has(id));
  const failedBefore = await readFailedVerifies(store, cluster, unread, "data");
  for (const verdict of backupVerdicts) {
    const chain = chains.get(verdict.id) ?? [];
    const before = chain.filter((id) => failedBefore.has(id));
    if (before.length > 0)
      findings.push({
        kind: "unrestorable",
        severity: "error",
        object: verdict.id,
        backup: verdict.id,
        message: `backup ${verdict.id} cannot be restored: the last verify of backup ${before.join(", ")} of its chain failed (not read by this run)`,
      });
    const failedNow = failedMembers(chain, findings);
    verdict.failedChain = chain.filter((id) => failedNow.includes(id) || failedBefore.has(id));
    verdict.dataOk =
      !findings.some((f) => damagesData(f) && f.backup === verdict.id) &&
      verdict.failedChain.length === 0;
    verdict.ok =
      !findings.some((f) => f.severity === "error" && f.backup === verdict.id) &&
      !(restorability.get(verdict.id)?.segments ?? []).some((name) => badWal.has(name)) &&
      verdict.failedChain.length === 0;
  }
  for (const verdict of dumpVerdicts)
    verdict.ok = !findings.some((f) => f.severity === "error" && f.dumpSet === verdict.id);

  const stopTime = deps.now().toISOString();
  const record = (verdict: ItemVerdict, about: (f: Finding) => boolean): VerifyRecord => ({
    format: 1,
    kind: "verify",
    id: verdict.id,
    time: stopTime,
    ok: verdict.ok,
    objects: verdict.objects,
    hashed: verdict.hashed,
    findings: findings.filter(about).map((f) => f.message),
  });
  for (const verdict of backupVerdicts) {
    const own = record(verdict, (f) => f.backup === verdict.id);
    await recordResult(
      deps,
      backupVerifyKey(cluster, verdict.id),
      backupManifestKey(cluster, verdict.id),
      {
        ...own,
        findings: [...own.findings, ...inheritedFindings(chains.get(verdict.id) ?? [], findings)],
        restorable: verdict.restorable,
        dataOk: verdict.dataOk,
      },
    );
  }
  for (const verdict of dumpVerdicts) {
    await recordResult(
      deps,
      dumpVerifyKey(cluster, verdict.id),
      dumpManifestKey(cluster, verdict.id),
      record(verdict, (f) => f.dumpSet === verdict.id),
    );
  }
  return {
    cluster,
    startTime,
    stopTime,
    scope: {
      backup: request.backupId ?? null,
      since: request.since === undefined ? null : new Date(request.since).toISOString(),
      sample: request.sample ?? null,
    },
    backups: backupVerdicts,
    dumpSets: dumpVerdicts,
    wal,
    findings,
    errors: findings.filter((f) => f.severity === "error").length,
    warnings: findings.filter((f) => f.severity === "warning").length,
    exit: verifyExit(findings),
  };
}

function manifestFinding(
  key: string,
  error: Error,
  owner: { backup: string } | { dumpSet: string },
): Finding {
  return { kind: "manifest", severity: "error", object: key, ...owner, message: error.message };
}

/**
 * verify takes no lock (as pgBackRest's does not): a prune or `backup delete` running
 * meanwhile deletes a backup's manifest first, then its objects, so objects missing from a
 * backup whose manifest is gone now are that deletion, not damage. Such a backup is left
 * out of the report (and gets no verify record, which would be left behind without it).
 */
async function deletedMeanwhile(
  deps: VerifyDeps,
  manifestKey: string,
  what: string,
): Promise<boolean> {
  if (await deps.store.head(manifestKey)) return false;
  deps.log.info(
    `verify: ${what} was deleted while verify read it (a prune or delete): not checked`,
  );
  return true;
}

/**
 * A record that cannot be written does not change what was found: it is logged. Not
 * written when the manifest went meanwhile (a prune or delete while verify read the
 * WAL): a record with no manifest beside it would be left behind as debris.
 */
async function recordResult(
  deps: VerifyDeps,
  key: string,
  manifestKey: string,
  record: VerifyRecord,
): Promise<void> {
  try {
    if (!(await deps.store.head(manifestKey))) return;
    await writeVerifyRecord(deps.store, key, record);
  } catch (error) {
    deps.log.warn(`the result of ${record.id} is not recorded: ${(error as Error).message}`);
  }
}

/** What reading one object found: "ok", or why its content is wrong. */
type ReadResult = "ok" | "missing" | { undecodable: string } | { unreadable: string } | string;

/**
 * The objects a manifest lists: each present under `prefix` with its size (one listing),
 * then the --sample of the present ones read by `read`.
 */
async function checkObjects<T extends Listed>(
  deps: VerifyDeps,
  sample: Sample | undefined,
  prefix: string,
  objects: readonly T[],
  owner: string,
  read: (object: T) => Promise<ReadResult>,
): Promise<{ findings: Finding[]; hashed: number }> {
  const { store } = deps;
  const sizes = new Map<string, number>();
  for await (const entry of store.list(prefix)) sizes.set(entry.key, entry.size);
  const findings: Finding[] = [];
  const missing = (key: string): Finding => ({
    kind: "missing",
    severity: "error",
    object: key,
    message: `${store.url}/${key} is missing, though ${owner}'s manifest lists it`,
  });
  const present: T[] = [];
  for (const object of objects) {
    const size = sizes.get(object.key);
    if (size === undefined) findings.push(missing(object.key));
    else if (!sizeFits(store, size, object.storedSize)) {
      findings.push({
        kind: "size",
        severity: "error",
        object: object.key,
        message: `${store.url}/${object.key} is ${size} bytes, ${owner}'s manifest says ${object.storedSize}`,
      });
    } else present.push(object);
  }
  const chosen = pickSample(present, sample, deps.random);
  await runEach(chosen, deps.jobs, async (object) => {
    const result = await read(object);
    if (result === "ok") return;
    if (result === "missing") findings.push(missing(object.key));
    else {
      const why =
        typeof result === "string"
          ? result
          : "unreadable" in result
            ? `it cannot be read (${result.unreadable})`
            : `it does not decompress (${result.undecodable})`;
      findings.push({
        kind: "checksum",
        severity: "error",
        object: object.key,
        message: `${store.url}/${object.key} is corrupt: ${why}`,
      });
    }
  });
  findings.sort((a, b) => a.object.localeCompare(b.object));
  return { findings, hashed: chosen.length };
}

/** Why a segment's (or .partial's) raw head does not belong to its name; undefined if it does. */
function otherSegment(name: string, raw: { head: Buffer; size: number } | undefined) {
  const file = parseWalFileName(name);
  if (!raw || (file?.kind !== "segment" && file?.kind !== "partial")) return undefined;
  try {
    checkSegmentHeader(file, raw.head, raw.size);
    return undefined;
  } catch (error) {
    if (error instanceof RefusedError) return error.message;
    throw error;
  }
}

/** WAL objects: decompressed and hashed against their metadata; appends to `findings`. */
async function checkWal(
  deps: VerifyDeps,
  request: VerifyRequest,
  restorability: Map<string, Restorability>,
  backups: readonly BackupManifest[],
  findings: Finding[],
): Promise<{ objects: number; hashed: number }> {
  const { store, cluster } = deps;
  const only =
    request.backupId === undefined
      ? undefined
      : new Set([...restorability.values()].flatMap((r) => r.segments));
  const objects: { key: string; name: string; sha256: string | undefined }[] = [];
  for await (const entry of store.list(walPrefix(cluster))) {
    const { name, sha256 } = walNameOfKey(entry.key);
    if (!parseWalFileName(name)) continue;
    if (only && !only.has(name)) continue;
    const stored = entry.lastModified?.getTime();
    if (request.since !== undefined && stored !== undefined && stored < request.since) continue;
    objects.push({ key: entry.key, name, sha256 });
  }
  const chosen = pickSample(objects, request.sample, deps.random);
  deps.log.info(`verify: WAL: reading ${chosen.length} of ${objects.length} objects`);
  const found: Finding[] = [];
  const gone: Finding[] = [];
  await runEach(chosen, deps.jobs, async (object) => {
    const corrupt = (why: string): Finding => ({
      kind: "checksum",
      severity: "error",
      object: object.name,
      message: `${store.url}/${object.key} is corrupt: ${why}`,
    });
    let expected: { sha256: string; rawSize: number } | undefined;
    try {
      const digest = await readDigest(store, object.key, (metadata) => {
        const meta = decodeContentMeta(object.key, metadata);
        expected = meta;
        return meta.compression;
      });
      if (digest === "missing") {
        gone.push({
          kind: "missing",
          severity: "error",
          object: object.name,
          message: `${store.url}/${object.key} was listed but is gone (deleted meanwhile?)`,
        });
      } else if ("unreadable" in digest) {
        found.push(corrupt(`it cannot be read (${digest.unreadable})`));
      } else if ("undecodable" in digest) {
        found.push(corrupt(`it does not decompress (${digest.undecodable})`));
      } else if (
        digest.raw?.sha256 !== expected?.sha256 ||
        digest.raw?.size !== expected?.rawSize
      ) {
        found.push(
          corrupt(
            `it decompresses to ${digest.raw?.size} bytes of sha256 ${digest.raw?.sha256}, its metadata says ${expected?.rawSize} bytes of ${expected?.sha256}`,
          ),
        );
      } else if (object.sha256 !== undefined && object.sha256 !== expected?.sha256) {
        found.push(
          corrupt(`its content's sha256 is ${expected?.sha256}, its name says ${object.sha256}`),
        );
      } else {
        // Sound bytes can still be another segment's, moved here whole with their metadata:
        // the long page header names the segment (wal-fetch refuses it the same way).
        const other = otherSegment(object.name, digest.raw);
        if (other) found.push(corrupt(`it holds another WAL file than its name says: ${other}`));
      }
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      found.push(corrupt(error.message));
    }
  });
  if (gone.length > 0) {
    // A prune running meanwhile deletes WAL from before its oldest kept backup's start:
    // WAL no restore from a backup still there replays is that deletion, not damage.
    const oldest = await oldestRemainingBackup(deps, backups);
    const startLsn = parseLsn(oldest?.startLsn ?? "");
    for (const finding of gone) {
      const file = parseWalFileName(finding.object);
      if (
        oldest !== undefined &&
        startLsn !== undefined &&
        file !== undefined &&
        file.kind !== "history" &&
        segmentStartLsn(file, oldest.walSegmentSize) + BigInt(oldest.walSegmentSize) <= startLsn
      ) {
        deps.log.info(
          `verify: ${finding.object} was deleted while verify read it; it is older than the oldest backup (${oldest.id}), as a prune deletes`,
        );
        continue;
      }
      found.push(finding);
    }
  }
  findings.push(...found.sort((a, b) => a.object.localeCompare(b.object)));
  return { objects: objects.length, hashed: chosen.length };
}

/** The backup with the earliest start whose manifest is still there now (verify's start may be stale). */
async function oldestRemainingBackup(
  deps: VerifyDeps,
  backups: readonly BackupManifest[],
): Promise<BackupManifest | undefined> {
  const byStart = [...backups].sort((a, b) => {
    const d = (parseLsn(a.startLsn) ?? 0n) - (parseLsn(b.startLsn) ?? 0n);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  for (const backup of byStart) {
    if (await deps.store.head(backupManifestKey(deps.cluster, backup.id))) return backup;
  }
  return undefined;
}
