/**
 * takeBaseBackup: a non-exclusive base backup on one session, streamed as tar through
 * zstd into the repository, declared complete only once the WAL it needs is archived and
 * its manifest (written last) is stored. On failure nothing is listed: the objects of the
 * attempt are deleted and the manifest never written.
 *
 * The files are cut into bundles (bundle-plan.ts), and `jobs` worker threads each read,
 * hash and compress one bundle at a time while this thread stores their bytes. pg_control
 * is read last, once every other file is, into the part's last bundle, which gets the
 * backup_label and tablespace_map once the backup has stopped.
 */

import { realpath } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Compression } from "../compress/compression.js";
import { DEFAULT_INCR_WHOLE_PERCENT } from "../config/values.js";
import {
  ClusterMismatchError,
  describeSystemError,
  isDamagedObject,
  LocalIoError,
  PostgresError,
  RefusedError,
} from "../errors.js";
import { collectRelationMap, type DatabaseQuery, writeRelationMap } from "../find/relation-map.js";
import { formatBytes } from "../human-units.js";
import type { Logger } from "../log.js";
import type { PgServer, ServerFacts } from "../pg/server.js";
import { parseBackupLabel } from "../pg/server.js";
import {
  type BackupManifest,
  type BackupObjectEntry,
  type BackupTablespace,
  freshId,
  listBackupIds,
  readBackupManifest,
  readBackupSummary,
  writeBackupManifest,
} from "../repository/backup-manifest.js";
import { readIdentity } from "../repository/identity.js";
import { backupDataKey, backupManifestKey, backupPrefix } from "../repository/keys.js";
import { acquireLock } from "../repository/lock.js";
import { readFailedVerifies } from "../repository/verify-record.js";
import type { ObjectStore } from "../storage/object-store.js";
import { parseLsn, parseWalFileName, segmentBeforeLsn, segmentRange } from "../wal/names.js";
import { listWalVersions } from "../wal/versions.js";
import { type PartTree, planBundles } from "./bundle-plan.js";
import { MapSpill } from "./map-spill.js";
import { ParentIndex } from "./parent-files.js";
import {
  type BackupPlan,
  type BackupType,
  type IncrementalRequest,
  type ParentFacts,
  parentFactsOf,
  planBackupType,
} from "./plan-incremental.js";
import { pushTimelineHistory } from "./push-timeline-history.js";
import { type BundleRun, type IncrementalBase, storeBundles } from "./store-bundles.js";
import { TarUpload } from "./tar-upload.js";
import { type WalkEntry, walkTree } from "./walk.js";

export interface BackupDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  server: PgServer;
  /** The data directory; undefined means the server's data_directory setting. */
  pgdata: string | undefined;
  archiveTimeoutMs: number;
  lockTtlMs: number;
  /** How many bundles are read, compressed and stored at once. */
  jobs: number;
  log: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  progress: (doneBytes: number, totalBytes: number) => void;
  /** Opens a connection to one database, for the relation map (find/relation-map.ts); none: no map. */
  connectDatabase?: (database: string) => Promise<DatabaseQuery>;
}

export interface BackupRequest {
  fast: boolean;
  label: string | undefined;
  pin: boolean;
  /** Default full; an incr may be taken as a full (plan-incremental.ts says when). */
  type?: BackupType;
  /** --backup-max-incr: increments after a full before the next backup is a full. */
  maxIncr?: number;
  /** --backup-incr-whole: an increment stores a relation file whole from this share changed. */
  wholePercent?: number;
}

export async function takeBaseBackup(
  deps: BackupDeps,
  request: BackupRequest,
): Promise<BackupManifest> {
  const facts = await deps.server.facts();
  checkServer(facts);
  const pgdata = deps.pgdata ?? facts.dataDirectory;
  await checkDataDirectory(pgdata);
  const identity = await readIdentity(deps.store, deps.cluster);
  if (facts.inRecovery && !identity) {
    throw new RefusedError(
      `cluster '${deps.cluster}' in ${deps.store.url} has no archived WAL: a backup of this standby could not be restored`,
      "the primary must archive with 'pgha wal-push %p' into this repository and cluster name first",
    );
  }
  if (identity && identity.systemIdentifier !== facts.systemIdentifier) {
    throw new ClusterMismatchError(
      `the server is system ${facts.systemIdentifier} but cluster '${deps.cluster}' in ${deps.store.url} is system ${identity.systemIdentifier}`,
      "back up into the cluster name its archive_command uses (--cluster / PGHA_CLUSTER)",
    );
  }

  const lock = await acquireLock(deps.store, deps.cluster, {
    name: "cluster",
    purpose: "backup",
    ttlMs: deps.lockTtlMs,
    now: deps.now,
    log: deps.log,
  });
  let id: string;
  try {
    id = await freshId(
      deps.store,
      (candidate) => backupPrefix(deps.cluster, candidate),
      deps.now(),
    );
  } catch (error) {
    await lock.release();
    throw error;
  }
  const uploads: TarUpload[] = [];
  let run: BundleRun | undefined;
  let started = false;
  // Big block maps (this backup's, and its parent's) wait in a temporary file, not the
  // heap. The manifest returned cannot read them: the store's copy has them.
  const spill = new MapSpill(deps.log);
  try {
    // The parent an incremental one would have (the newest backup; a differential's: the
    // newest full): read once, before the start. Its files go straight into the index the
    // jobs compare with, never held as a list.
    let newest: BackupManifest | undefined;
    let parents: ParentIndex | undefined;
    let existing = new Set<string>();
    let failedVerify = new Set<string>();
    let unreadable: IncrementalRequest["unreadable"];
    if (request.type === "incr" || request.type === "diff") {
      const ids = await listBackupIds(deps.store, deps.cluster);
      existing = new Set(ids);
      const newestId =
        request.type === "diff"
          ? await newestFullId(deps.store, deps.cluster, ids, deps.log)
          : ids.at(-1);
      if (newestId) {
        parents = new ParentIndex(newestId, spill);
        try {
          newest = await readBackupManifest(deps.store, deps.cluster, newestId, {
            eachFile: parents.add,
          });
        } catch (error) {
          // A damaged parent: this backup is a full (the planner says why), not a failure.
          if (!isDamagedObject(error)) throw error;
          parents = undefined;
          unreadable = { id: newestId, why: error.message };
        }
        if (newest)
          // Their data: the parent's own WAL is not the increment's to replay.
          failedVerify = await readFailedVerifies(
            deps.store,
            deps.cluster,
            [...(newest.chain ?? []), newestId],
            "data",
          );
      }
    }
    const [catalog] = await deps.server.query<{ v: string }>(
      "SELECT catalog_version_no::text AS v FROM pg_control_system()",
    );
    const versionDir = `PG_${Math.floor(facts.versionNum / 10000)}_${catalog?.v}`;
    const startTime = deps.now();
    // The start waits for a checkpoint: spread over checkpoint_timeout unless --fast, which
    // can be minutes of nothing to see.
    deps.log.info(
      request.fast
        ? "starting the backup: waiting for an immediate checkpoint"
        : "starting the backup: waiting for the next checkpoint, spread as checkpoint_completion_target says (--fast asks for an immediate one)",
    );
    const startLsn = await deps.server.startBackup(
      facts.versionNum,
      request.label ?? `pgha backup ${id}`,
      request.fast,
    );
    started = true;
    const plan = await planType(
      deps,
      request,
      facts,
      newest && parentFactsOf(newest, parents?.hasBlockMaps),
      existing,
      failedVerify,
      unreadable,
    );
    const increment: IncrementalBase | undefined =
      plan.type === "incr" && parents
        ? {
            chainIndex: plan.chain.length,
            parents: parents.lookup,
            wholePercent: request.wholePercent ?? DEFAULT_INCR_WHOLE_PERCENT,
          }
        : undefined;
    newest = undefined;
    parents = undefined; // a full needs no index; an incremental's lookup keeps it
    // Listed after the start: tablespace_map is fixed by the start call and must match.
    const tablespaces: BackupTablespace[] = await deps.server.tablespaces();
    deps.log.info(
      `backup ${id} started at ${startLsn} (${facts.inRecovery ? "from a standby" : "primary"})${plan.type === "incr" ? `: ${request.type === "diff" ? "differential" : "incremental"}, parent ${plan.parent}` : ""}`,
    );

    // Read inside the backup, so its WAL (from the start LSN on) covers every later change.
    const relationMap = deps.connectDatabase
      ? await collectRelationMap(deps.server, deps.connectDatabase, deps.log, deps.now()).catch(
          (error: Error) => {
            deps.log.warn(`no relation map for backup ${id}: ${error.message}`);
            return undefined;
          },
        )
      : undefined;

    const trees: PartTree[] = await Promise.all([
      ...tablespaces.map(async (ts) => ({
        part: ts.oid,
        root: ts.location,
        entries: await walkTree(ts.location, {
          isDataDirectory: false,
          onlyTopDirectory: versionDir,
        }),
      })),
      walkTree(pgdata, { isDataDirectory: true }).then((entries) => ({
        part: "base",
        root: pgdata,
        entries,
      })),
    ]);
    const total = trees.reduce((sum, t) => sum + t.entries.reduce((s, e) => s + e.size, 0), 0);
    let done = 0;
    const onBytes = (n: number) => {
      done += n;
      deps.progress(done, total);
    };

    const { data, control } = withoutControlFile(trees);
    const bundles = planBundles(data);
    run = storeBundles({ ...deps, spill }, id, bundles, onBytes, increment);
    // Every file read: pg_control can be, and the backup stopped, while the last uploads
    // finish (the archiver pushes the stop's segment meanwhile).
    await run.read;
    // Every file was read: the walk's entries (hundreds of bytes each, 100,000 files make
    // tens of MB) are let go before the manifest is built and written.
    for (const list of [trees, data, bundles]) for (const t of list) t.entries = [];

    // The part's last bundle: pg_control, read after every other file, then what the stop returns.
    const lastBase = bundles.filter((b) => b.part === "base").at(-1)?.index ?? -1;
    const base = await TarUpload.open(
      deps.store,
      backupDataKey(deps.cluster, id, "base", lastBase + 1),
      "base",
      deps.compression,
      onBytes,
    );
    uploads.push(base);
    if (control) await base.addFile(control, join(pgdata, control.path));

    const stop = await deps.server.stopBackup(facts.versionNum);
    started = false;
    const label = parseBackupLabel(stop.labelFile);
    await base.addBuffer("backup_label", Buffer.from(stop.labelFile));
    if (stop.tablespaceMap) await base.addBuffer("tablespace_map", Buffer.from(stop.tablespaceMap));
    const baseDone = await base.finish();
    const stored = await run.stored;
    const objects = bundles.map((b): BackupObjectEntry => {
      const done = stored.get(b);
      return { ...(done?.object as BackupObjectEntry), files: done?.files.length ?? 0 };
    });
    const files = bundles.flatMap((b) => stored.get(b)?.files ?? []);
    objects.push({ ...baseDone.object, files: baseDone.files.length });
    files.push(...baseDone.files);
    const stopWal = segmentBeforeLsn(label.timeline, stopLsnOf(stop.lsn), facts.walSegmentSize);
    deps.log.info(
      `backup ${id} data stored; waiting for WAL ${label.startWal}..${stopWal} in the repository`,
    );

    await waitForWal(deps, segmentRange(label.startWal, stopWal, facts.walSegmentSize));
    await pushTimelineHistory(deps, pgdata, label.timeline);
    const archived = await readIdentity(deps.store, deps.cluster);
    if (!archived || archived.systemIdentifier !== facts.systemIdentifier) {
      throw new ClusterMismatchError(
        `the WAL in cluster '${deps.cluster}' is not from this server (system ${facts.systemIdentifier})`,
        "back up into the cluster name its archive_command uses (--cluster / PGHA_CLUSTER)",
      );
    }

    const manifest: BackupManifest = {
      format: plan.type === "incr" ? 2 : 1,
      kind: "base-backup",
      id,
      type: plan.type,
      parent: plan.type === "incr" ? plan.parent : null,
      chain: plan.type === "incr" ? plan.chain : [],
      cluster: deps.cluster,
      label: request.label ?? null,
      pinned: request.pin,
      pgVersion: facts.version,
      pgVersionNum: facts.versionNum,
      systemIdentifier: facts.systemIdentifier,
      walSegmentSize: facts.walSegmentSize,
      timeline: label.timeline,
      startLsn,
      stopLsn: stop.lsn,
      startWal: label.startWal,
      stopWal,
      startTime: startTime.toISOString(),
      stopTime: deps.now().toISOString(),
      fromStandby: label.fromStandby,
      dataDirectory: await realpath(pgdata).catch(() => resolve(pgdata)),
      compression:
        deps.compression.algorithm === "none" ? "none" : `zstd:${deps.compression.level}`,
      rawBytes: objects.reduce((s, o) => s + o.rawSize, 0),
      storedBytes: objects.reduce((s, o) => s + o.storedSize, 0),
      tablespaces,
      objects,
      files,
      backupLabel: stop.labelFile,
      tablespaceMap: stop.tablespaceMap,
    };
    lock.check();
    if (relationMap) await writeRelationMap(deps.store, deps.cluster, id, relationMap);
    await writeBackupManifest(deps.store, manifest);
    deps.log.info(
      `backup ${id} complete: ${files.length} files, ${formatBytes(manifest.rawBytes)} stored as ${formatBytes(manifest.storedBytes)}${plan.type === "incr" ? ` (incremental: ${describeIncrement(files)})` : ""}`,
    );
    return manifest;
  } catch (error) {
    for (const upload of uploads) await upload.abort(error as Error);
    // Every upload has settled before the attempt's objects are removed.
    await run?.stored.catch(() => undefined);
    if (started) await deps.server.stopBackup(facts.versionNum).catch(() => undefined);
    await deleteAttempt(deps, id);
    throw error;
  } finally {
    spill.close();
    await lock.release().catch(() => undefined);
  }
}

/** Full or incremental: an incremental asked for is a full when planBackupType says so, and the log says why. */
async function planType(
  deps: BackupDeps,
  request: BackupRequest,
  facts: ServerFacts,
  newest: ParentFacts | undefined,
  existing: ReadonlySet<string>,
  failedVerify: ReadonlySet<string>,
  unreadable: IncrementalRequest["unreadable"],
): Promise<BackupPlan> {
  if (request.type !== "incr" && request.type !== "diff") return { type: "full" };
  // The timeline of the checkpoint the backup starts from: the backup_label's START TIMELINE.
  const [row] = await deps.server.query<{ tli: number }>(
    "SELECT timeline_id AS tli FROM pg_control_checkpoint()",
  );
  const plan = planBackupType({
    requested: request.type,
    maxIncr: request.maxIncr ?? DEFAULT_MAX_INCR,
    server: {
      timeline: Number(row?.tli),
      systemIdentifier: facts.systemIdentifier,
      versionNum: facts.versionNum,
    },
    newest,
    unreadable,
    existing,
    failedVerify,
  });
  if (plan.type === "full") {
    // Damage is a warning: pgha verify has something to say.
    const say = unreadable ? deps.log.warn : deps.log.info;
    say(
      `taking a full backup instead of ${request.type === "diff" ? "a differential" : "an incremental"} one: ${plan.reason}`,
    );
  }
  return plan;
}

/**
 * A differential's parent: the newest backup of the cluster that is a full. A newer
 * backup whose manifest is damaged is passed over (it is not the parent; verify names it).
 */
async function newestFullId(
  store: ObjectStore,
  cluster: string,
  ids: readonly string[],
  log: Logger,
): Promise<string | undefined> {
  for (const id of [...ids].reverse()) {
    try {
      const summary = await readBackupSummary(store, cluster, id);
      if ((summary.type ?? "full") === "full") return id;
    } catch (error) {
      if (!isDamagedObject(error)) throw error;
      log.warn(`backup ${id}'s manifest cannot be read (${error.message}): passed over`);
    }
  }
  return undefined;
}

const DEFAULT_MAX_INCR = 6;

/** What an incremental backup stored: files whole, as changed blocks, unchanged. */
function describeIncrement(files: readonly BackupManifest["files"][number][]): string {
  let whole = 0;
  let blocks = 0;
  let none = 0;
  for (const file of files) {
    if (file.stored === "none") none++;
    else if (file.stored === "blocks") blocks++;
    else whole++;
  }
  return `${whole} whole, ${blocks} as changed blocks, ${none} unchanged`;
}

function stopLsnOf(text: string): bigint {
  const lsn = parseLsn(text);
  if (lsn === undefined)
    throw new PostgresError(`the server returned '${text}' as the backup's stop LSN`);
  return lsn;
}

function checkServer(facts: ServerFacts): void {
  if (facts.versionNum < 100000) {
    throw new RefusedError(
      `PostgreSQL ${facts.version} is too old`,
      "pgha supports PostgreSQL 10 and newer",
    );
  }
  if (facts.inRecovery) return; // a standby: the primary archives, and waitForWal checks it
  const hint =
    "set archive_mode = on and archive_command = 'pgha wal-push %p' (same --repo and --cluster), reload, and check pg_stat_archiver";
  if (facts.archiveMode !== "on" && facts.archiveMode !== "always") {
    throw new RefusedError(
      `archiving is off on the server (archive_mode = ${facts.archiveMode}): a backup could not be restored`,
      hint,
    );
  }
  if (
    facts.archiveLibrary !== "" ||
    !/pgha/.test(facts.archiveCommand) ||
    !/wal-push/.test(facts.archiveCommand)
  ) {
    throw new RefusedError(
      `archive_command does not call pgha wal-push (archive_command = '${facts.archiveCommand}'${facts.archiveLibrary ? `, archive_library = '${facts.archiveLibrary}'` : ""})`,
      hint,
    );
  }
}

async function checkDataDirectory(pgdata: string): Promise<void> {
  const { access } = await import("node:fs/promises");
  try {
    await access(join(pgdata, "PG_VERSION"));
  } catch (error) {
    throw new LocalIoError(
      `${pgdata} is not a readable data directory: ${describeSystemError(error)}`,
      {
        hint: "pgha backup runs on the database host; set --pgdata (PGHA_PGDATA) to the data directory and run as a user that can read it",
      },
    );
  }
}

/** pg_control goes last, as pg_basebackup sends it: it is taken out of the walk. */
function withoutControlFile(trees: PartTree[]): { data: PartTree[]; control?: WalkEntry } {
  const base = trees.find((t) => t.part === "base");
  const control = base?.entries.find((e) => e.path === "global/pg_control" && e.type === "file");
  const data = trees.map((t) =>
    t === base ? { ...t, entries: t.entries.filter((e) => e !== control) } : t,
  );
  return control ? { data, control } : { data };
}

async function waitForWal(deps: BackupDeps, names: string[]): Promise<void> {
  const deadline = deps.now().getTime() + deps.archiveTimeoutMs;
  for (const name of names) {
    const file = parseWalFileName(name);
    if (!file) throw new Error(`bad segment name ${name}`);
    let pause = 50;
    // One listing finds the name under either layout (plain or content-addressed key).
    while ((await listWalVersions(deps.store, deps.cluster, file)).length === 0) {
      if (deps.now().getTime() > deadline) {
        throw new PostgresError(
          `WAL segment ${name} needed by the backup was not archived within ${Math.round(deps.archiveTimeoutMs / 1000)}s`,
          {
            hint: "check pg_stat_archiver (failed_count, last_failed_wal) and the server log; on a standby the primary must archive (archive_timeout helps on a quiet primary); --archive-timeout sets the wait",
          },
        );
      }
      // Usually archived a moment after the stop (the archiver's push of one segment):
      // look often. A HEAD every 200 ms at most costs little; backing off to seconds cost
      // a backup up to that much after its WAL was there.
      await deps.sleep(pause);
      pause = Math.min(200, pause * 2);
    }
  }
}

async function deleteAttempt(deps: BackupDeps, id: string): Promise<void> {
  try {
    // The manifest first (if it got that far): a half-deleted backup is never listed.
    await deps.store.delete(backupManifestKey(deps.cluster, id));
    for await (const entry of deps.store.list(backupPrefix(deps.cluster, id)))
      await deps.store.delete(entry.key);
  } catch (error) {
    deps.log.warn(
      `could not remove the objects of failed backup ${id}: ${(error as Error).message}`,
    );
  }
}
