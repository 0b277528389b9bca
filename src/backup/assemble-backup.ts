/**
 * assembleBackup: restores backup B from its chain [...chain, B] (an incremental backup),
 * or restores any backup into an existing data directory (restore --delta). The plan
 * (assembly-plan.ts) says which member each file and block comes from; every file of B
 * is made at its final size first, then the members' objects are fetched `jobs` at once,
 * largest first, each job writing only what the plan takes from its object: whole files
 * checked against their sha256, blocks against their 16-byte hashes. An object from
 * which nothing is taken is not downloaded. Only B's objects make the directory tree.
 *
 * Into empty targets, a failure empties them again (as a full restore does). With --delta
 * the targets were not empty: a failure removes global/pg_control, so that the half-
 * written directory cannot be started, and says so.
 */
import { chmod, mkdir, open, rm, truncate } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describeSystemError, IntegrityError, LocalIoError, PghaError } from "../errors.js";
import { formatBytes, formatDuration } from "../human-units.js";
import { type BackupManifest, readBackupManifest } from "../repository/backup-manifest.js";
import { type Assembly, planAssembly } from "./assembly-plan.js";
import { largestFirst } from "./bundle-plan.js";
import { chainIds } from "./chain-manifest.js";
import { type PartDir, removeStrayDirectories, removeStrays } from "./delta-scan.js";
import {
  emptyDirectory,
  type FetchBackupDeps,
  type FetchResult,
  fetchObject,
  finishTree,
  requireEmpty,
  withStop,
} from "./fetch-backup.js";
import { JobPool, runEach } from "./job-pool.js";
import { checkOriginalLocations, type TablespaceTarget } from "./tablespace-targets.js";

/**
 * The manifests of `manifest`'s chain, oldest first, then `manifest`: read (and verified)
 * from the store unless the caller has them. A member missing or not of this chain fails.
 */
export async function chainMembers(
  deps: Pick<FetchBackupDeps, "store" | "chain">,
  manifest: BackupManifest,
): Promise<BackupManifest[]> {
  const ids = chainIds(manifest);
  const members: BackupManifest[] = [];
  for (const id of ids) {
    const given = deps.chain?.find((m) => m.id === id);
    members.push(given ?? (await readBackupManifest(deps.store, manifest.cluster, id)));
  }
  members.forEach((member, at) => {
    const own = chainIds(member);
    if (
      member.id !== ids[at] ||
      member.systemIdentifier !== manifest.systemIdentifier ||
      own.length !== at ||
      own.some((id, i) => id !== ids[i])
    )
      throw new IntegrityError(
        `backup ${manifest.id} needs backup ${ids[at]} of its chain, which is not that backup (its manifest does not match)`,
      );
  });
  return [...members, manifest];
}

export async function assembleBackup(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  root: string,
  tablespaces: TablespaceTarget[],
): Promise<FetchResult> {
  const delta = deps.keep !== undefined;
  const parts: PartDir[] = [
    { part: "base", root },
    ...tablespaces.map((ts) => ({ part: ts.oid, root: ts.location })),
  ];
  const members = await chainMembers(deps, manifest);
  const assembly = planAssembly(members, deps.keep, deps.reuse);
  if (!delta) for (const { root: dir } of parts) await requireEmpty(dir);
  await checkOriginalLocations(tablespaces);
  try {
    return await assembleInto(deps, assembly, root, tablespaces, parts, delta);
  } catch (error) {
    if (delta) await rm(join(root, "global", "pg_control"), { force: true }).catch(() => undefined);
    else for (const { root: dir } of parts) await emptyDirectory(dir);
    const failed =
      error instanceof PghaError
        ? error
        : new LocalIoError(`cannot restore into ${root}: ${describeSystemError(error)}`, {
            cause: error,
          });
    if (delta)
      failed.message = `${failed.message} (restore --delta stopped: ${root} is incomplete and its global/pg_control was removed; restore it again)`;
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
  if (delta) await removeStrays(parts, target.files);
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  for (const ts of tablespaces) {
    await mkdir(ts.location, { recursive: ts.mapped, mode: 0o700 }).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    });
    if (delta) await chmod(ts.location, 0o700);
  }
  await makeFiles(assembly, dirOf);

  /** Blocks written per file (0 for a whole file), and which member gave which file. */
  const written = new Map<string, number>();
  const taken = new Set<string>();
  const directories = new Map<string, number>();
  const links: { path: string; target: string }[] = [];
  // An object from which nothing is taken is not read (but the target's own objects make
  // the directory tree).
  const tasks = assembly.members.flatMap((member) =>
    member.manifest.objects
      .map((object, at) => ({
        member,
        object,
        entries: member.byObject?.[at] ?? member.entries.get(object.part) ?? new Map(),
      }))
      .filter((task) => member.structure || task.entries.size > 0),
  );
  const total = tasks.reduce((n, t) => n + t.object.rawSize, 0);
  let done = 0;
  const pool = new JobPool(deps.jobs);
  try {
    await runEach(
      largestFirst(tasks, (t) => t.object.rawSize),
      deps.jobs,
      ({ member, object, entries }, signal) => {
        const part = object.part;
        const record = (path: string, count: number) => {
          const key = `${part}/${path}`;
          const once = `${member.manifest.id}/${key}`;
          if (!entries.has(path) || taken.has(once))
            throw new IntegrityError(`${object.key} holds '${path}' twice or unplanned`);
          taken.add(once);
          written.set(key, (written.get(key) ?? 0) + count);
        };
        return fetchObject(
          deps.store,
          pool,
          object,
          dirOf(part),
          withStop(signal, deps),
          {
            file: (path, size, sha256) => {
              const entry = assembly.files.get(`${part}/${path}`)?.entry;
              if (!entry || size !== entry.size || sha256 !== entry.sha256)
                throw new IntegrityError(
                  `${path} from ${object.key} does not match its manifest checksum`,
                );
              record(path, 0);
            },
            blocks: record,
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
          { entries, structure: member.structure },
        );
      },
    );
  } finally {
    await pool.close();
  }
  for (const [key, file] of assembly.files) {
    if (file.write === "keep") continue;
    const count = written.get(key);
    if (file.write === "blocks" ? (count ?? 0) !== file.blocks : count === undefined)
      throw new IntegrityError(
        `backup ${target.id}: ${key} was not fully restored from its chain (${file.write === "blocks" ? `${count ?? 0} of ${file.blocks} blocks` : "its whole copy was not found"})`,
      );
  }
  if (delta) await removeStrayDirectories(parts, new Set(directories.keys()), target.files);
  await finishTree(target, root, tablespaces, directories, links);
  const chain = assembly.members.length > 1 ? ` (chain of ${assembly.members.length})` : "";
  deps.log.info(
    `backup ${target.id}${chain}: ${assembly.written} files written (${formatBytes(assembly.writtenBytes)}, from ${tasks.length} objects of ${formatBytes(total)}), ${assembly.kept} kept, into ${root} in ${formatDuration((performance.now() - started) / 1000)}`,
  );
  return {
    files: assembly.written + assembly.kept,
    bytes: assembly.writtenBytes,
    tablespaces: tablespaces.map(({ oid, name, location }) => ({ oid, name, location })),
  };
}

/** Permission bits as a new file gets them from open(path, flags, mode). */
const UMASK = process.umask();

/**
 * Every file of B at its final size, with its mode as a restore into an empty directory
 * gives it: new (sparse) files for whole and block-assembled ones, existing ones cut to
 * size where their blocks are reused; kept files get their mode only.
 */
async function makeFiles(assembly: Assembly, dirOf: (part: string) => string): Promise<void> {
  const made = new Set<string>();
  const list = [...assembly.files.values()];
  await runEach(list, 8, async (file) => {
    const { entry } = file;
    const path = join(dirOf(entry.part), entry.path);
    const mode = entry.mode & 0o777;
    if (file.write === "keep") {
      await chmod(path, mode & ~UMASK);
      return;
    }
    const parent = dirname(path);
    if (!made.has(parent)) {
      await mkdir(parent, { recursive: true, mode: 0o700 });
      made.add(parent);
    }
    if (file.reuse) {
      await truncate(path, entry.size);
      await chmod(path, mode & ~UMASK);
      return;
    }
    await rm(path, { force: true });
    const handle = await open(path, "wx", mode);
    try {
      await handle.truncate(entry.size);
    } finally {
      await handle.close();
    }
  });
}
