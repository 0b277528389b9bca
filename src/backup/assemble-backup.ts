/**
 * assembleBackup: restores backup B from its chain [...chain, B] (an incremental backup),
 * or restores any backup into an existing data directory (restore --delta). The plan
 * (assembly-plan.ts) says which member each file and block comes from; the members'
 * objects are fetched `jobs` at once (the first job that writes into a file makes it; with
 * --delta every file is made or cut to its final size first),
 * largest first, each job writing only what the plan takes from its object: whole files
 * checked against their sha256, blocks against their 16-byte hashes. An object from
 * which nothing is taken is not downloaded. Only B's objects make the directory tree.
 *
 * Into empty targets, a failure empties them again (as a full restore does). With --delta
 * the targets were not empty: global/pg_control is removed before anything changes (the
 * backup's is put in place last: pg-control-last.ts), so that a half-written directory
 * cannot be started, even after kill -9; a failure says so.
 */
import {
  chmodSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  rmSync,
  truncateSync,
} from "node:fs";
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { IntegrityError, PghaError, restoreWriteError, withRestoreHint } from "../errors.js";
import { formatBytes, formatDuration } from "../human-units.js";
import { type BackupManifest, readBackupManifest } from "../repository/backup-manifest.js";
import {
  type Assembly,
  type EntryPlan,
  type FileWrite,
  MemberPlanner,
  planMember,
  planTarget,
  type TargetPlan,
} from "./assembly-plan.js";
import { largestFirst } from "./bundle-plan.js";
import { chainIds, checkAsPlanned } from "./chain-manifest.js";
import { type PartDir, partDirs, removeStrayDirectories, removeStrays } from "./delta-scan.js";
import {
  emptyDirectory,
  type FetchBackupDeps,
  type FetchResult,
  fetchObject,
  finishTree,
  keptForDelta,
  requireEmpty,
  withStop,
} from "./fetch-backup.js";
import { JobPool, runEach } from "./job-pool.js";
import {
  PG_CONTROL,
  PG_CONTROL_WRITING,
  writeRestoreMarker,
  writtenAs,
} from "./pg-control-last.js";
import { checkOriginalLocations, type TablespaceTarget } from "./tablespace-targets.js";

/**
 * Member `at` of `target`'s chain, planned: the caller's manifest (deps.chain), or read
 * from the store with its files handed to the planner one by one, never held together.
 * One that is not that backup of this chain fails.
 */
async function planChainMember(
  deps: Pick<FetchBackupDeps, "store" | "chain" | "plannedChain">,
  plan: TargetPlan,
  target: BackupManifest,
  at: number,
): Promise<void> {
  const ids = chainIds(target);
  const id = ids[at] as string;
  const planner = new MemberPlanner(plan, at);
  const given = deps.chain?.find((m) => m.id === id);
  if (given) for (const file of given.files) planner.take(file);
  const member =
    given ??
    (await readBackupManifest(deps.store, target.cluster, id, {
      eachFile: (file) => planner.take(file),
    }));
  const own = chainIds(member);
  if (
    member.id !== id ||
    member.systemIdentifier !== target.systemIdentifier ||
    own.length !== at ||
    own.some((other, i) => other !== ids[i])
  )
    throw new IntegrityError(
      `backup ${target.id} needs backup ${id} of its chain, which is not that backup (its manifest does not match)`,
    );
  const planned = deps.plannedChain?.find((m) => m.id === id);
  if (planned) checkAsPlanned(planned, member);
  planner.finish(member);
}

/**
 * The assembly of `target` from its chain: B's files planned, then each member's, one at
 * a time, so that memory holds B's files and a batch of a member's, not the whole chain's.
 */
export async function planChain(
  deps: Pick<FetchBackupDeps, "store" | "chain" | "plannedChain" | "keep" | "reuse">,
  target: BackupManifest,
): Promise<Assembly> {
  const plan = planTarget(target, deps.keep, deps.reuse);
  const members = chainIds(target).length;
  for (let at = 0; at < members; at++) await planChainMember(deps, plan, target, at);
  planMember(plan, members, target);
  plan.targets = [];
  return plan;
}

export async function assembleBackup(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  root: string,
  tablespaces: TablespaceTarget[],
): Promise<FetchResult> {
  const delta = deps.keep !== undefined;
  const parts: PartDir[] = partDirs(manifest, root, tablespaces);
  const assembly = await planChain(deps, manifest);
  if (!delta) for (const { root: dir } of parts) await requireEmpty(dir);
  await checkOriginalLocations(tablespaces);
  try {
    return await assembleInto(deps, assembly, root, tablespaces, parts, delta);
  } catch (error) {
    // A directory that is not there (its parent refused it) was not touched.
    const touched =
      delta &&
      (await stat(root).then(
        () => true,
        () => false,
      ));
    if (touched)
      for (const name of [PG_CONTROL, PG_CONTROL_WRITING])
        await rm(join(root, name), { force: true }).catch(() => undefined);
    else if (!delta) {
      const resumable = await keptForDelta(deps, error, root, tablespaces);
      if (resumable) throw resumable;
      for (const { root: dir } of parts) await emptyDirectory(dir);
    }
    const failed =
      error instanceof PghaError
        ? (withRestoreHint(error, manifest.id) as PghaError)
        : restoreWriteError(root, error);
    if (touched)
      failed.message = `${failed.message} (restore --delta stopped: ${root} is incomplete and its global/pg_control was removed; once what stopped it is put right, the same restore with --delta finishes it)`;
    throw failed;
  }
}

async function assembleInto(
  deps: FetchBackupDeps,
  assembly: Assembly,
  root: string,
  tablespaces: TablespaceTarget[],
  parts: PartDir[],
  delta: boolean,
): Promise<FetchResult> {
  const started = performance.now();
  const target = assembly.members.at(-1)?.manifest as BackupManifest;
  const dirOf = (part: string) => {
    const dir = parts.find((p) => p.part === part)?.root;
    if (dir === undefined)
      throw new IntegrityError(`backup ${target.id} has data for unknown tablespace ${part}`);
    return dir;
  };
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  // Before anything changes: a restore killed half-way leaves no pg_control behind, so
  // the half-written directory cannot be started (the backup's is written last), and a
  // marker that lets restore --delta finish it.
  if (delta) await rm(join(root, PG_CONTROL), { force: true });
  await writeRestoreMarker(root, target.id);
  if (delta) await removeStrays(parts, target.files);
  for (const ts of tablespaces) {
    await mkdir(ts.location, { recursive: ts.mapped, mode: 0o700 }).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    });
    if (delta) await chmod(ts.location, 0o700);
  }
  await makeFiles(assembly, dirOf, delta);

  const directories = new Map<string, number>();
  const links: { path: string; target: string }[] = [];
  // An object from which nothing is taken is not read (but the target's own objects make
  // the directory tree).
  const tasks = assembly.members.flatMap((member) =>
    member.manifest.objects
      .map((object, at) => ({
        member,
        object,
        entries: member.byObject[at] ?? new Map<string, EntryPlan>(),
      }))
      .filter((task) => member.structure || task.entries.size > 0),
  );
  const total = tasks.reduce((n, t) => n + t.object.rawSize, 0);
  // The files each member wrote: a member gives a file at most once, all its planned
  // blocks of it (the totals checked at the end then mean exactly once from each).
  const written = new Map(assembly.members.map((m) => [m, new Set<FileWrite>()]));
  let done = 0;
  let passedOver = 0;
  const pool = new JobPool(deps.jobs);
  try {
    await runEach(
      largestFirst(tasks, (t) => t.object.rawSize),
      deps.jobs,
      ({ member, object, entries }, signal) => {
        const part = object.part;
        /** What the job wrote of a planned entry: a whole copy, or `count` blocks. */
        const record = (path: string, how: FileWrite["write"], count: number) => {
          const file = assembly.find(part, path);
          const planned = entries.get(path);
          const seen = written.get(member) as Set<FileWrite>;
          if (!file || !planned || file.write !== how)
            throw new IntegrityError(`${object.key} holds '${path}', which was not planned so`);
          if (seen.has(file) || (planned.how === "blocks" && planned.blocks.length !== count))
            throw new IntegrityError(
              `${object.key}: '${path}' was not written exactly as planned from backup ${member.manifest.id} (twice, or ${count} blocks of ${planned.how === "blocks" ? planned.blocks.length : 1})`,
            );
          seen.add(file);
          file.done += count;
        };
        const fetched = fetchObject(
          deps.store,
          pool,
          object,
          dirOf(part),
          withStop(signal, deps),
          {
            file: (path, size, sha256) => {
              const entry = assembly.find(part, path)?.entry;
              if (!entry || size !== entry.size || sha256 !== entry.sha256)
                throw new IntegrityError(
                  `${path} from ${object.key} does not match its manifest checksum`,
                );
              record(path, "whole", 1);
            },
            blocks: (path, count) => record(path, "blocks", count),
            directory: (path, mode) => {
              directories.set(path, mode);
            },
            symlink: (path, linkTarget) => {
              links.push({ path, target: linkTarget });
            },
            progress: (n) => {
              done += n;
              deps.progress(done, total);
            },
          },
          { entries, structure: member.structure, create: !delta },
        );
        return fetched.then((result) => {
          passedOver += result.skipped;
        });
      },
    );
  } finally {
    await pool.close();
  }
  // Each file written exactly once: its whole copy, or each of its planned blocks.
  for (const file of assembly.files) {
    if (file.write === "keep" || file.done === (file.write === "blocks" ? file.blocks : 1))
      continue;
    const { part, path } = file.entry;
    throw new IntegrityError(
      `backup ${target.id}: ${part}/${path} was not restored exactly once from its chain (${file.write === "blocks" ? `${file.done} of ${file.blocks} blocks` : `${file.done} whole copies`})`,
    );
  }
  if (delta) await removeStrayDirectories(parts, new Set(directories.keys()), target.files);
  await finishTree(target, root, tablespaces, directories, links);
  const chain = assembly.members.length > 1 ? ` (chain of ${assembly.members.length})` : "";
  deps.log.info(
    `backup ${target.id}${chain}: ${assembly.written} files written (${formatBytes(assembly.writtenBytes)}, from ${tasks.length} objects of ${formatBytes(total)}, ${formatBytes(passedOver)} of it passed over), ${assembly.kept} kept, into ${root} in ${formatDuration((performance.now() - started) / 1000)}`,
  );
  return {
    files: assembly.written + assembly.kept,
    bytes: assembly.writtenBytes,
    passedOver,
    tablespaces: tablespaces.map(({ oid, name, location }) => ({ oid, name, location })),
  };
}

/**
 * restore --delta: every file of B at its final size, with its mode as a restore into an
 * empty directory gives it: new (sparse) files for whole and block-assembled ones,
 * existing ones cut to size where their blocks are reused; kept files get their mode only.
 * Into empty targets, only the files no job writes into (empty ones): the first job that
 * writes into a file makes it (unpack-bundle.ts), while the others run; made here, one
 * after the other, they held up every job (about 0.3 ms a file here).
 *
 * With synchronous calls, one file after the other: asynchronous ones, several at once,
 * went through libuv's four threads contending for the directory's lock, about 1 ms a
 * file (100,000 files: minutes) against tens of microseconds. The event loop is given a
 * turn every few hundred files (signals, progress).
 */
async function makeFiles(
  assembly: Assembly,
  dirOf: (part: string) => string,
  delta: boolean,
): Promise<void> {
  // The permission bits a new file gets from open(path, flags, mode): what kept and reused
  // files are given, so that they match the files made new.
  const UMASK = process.umask();
  const made = new Set<string>();
  let count = 0;
  for (const file of assembly.files) {
    if (++count % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
    const { entry } = file;
    if (!delta && (file.write === "whole" || file.blocks > 0)) continue;
    const path = join(dirOf(entry.part), writtenAs(entry.path, entry.part !== "base"));
    const mode = entry.mode & 0o777;
    if (file.write === "keep") {
      chmodSync(path, mode & ~UMASK);
      continue;
    }
    const parent = dirname(path);
    if (!made.has(parent)) {
      mkdirSync(parent, { recursive: true, mode: 0o700 });
      made.add(parent);
    }
    if (file.reuse) {
      truncateSync(path, entry.size);
      chmodSync(path, mode & ~UMASK);
      continue;
    }
    rmSync(path, { force: true });
    const fd = openSync(path, "wx", mode);
    try {
      ftruncateSync(fd, entry.size);
    } finally {
      closeSync(fd);
    }
  }
}
