/**
 * What wal-push learned about a repository, kept in the data directory so that the next
 * pushes do not ask again (push.ts says which request each fact saves):
 *
 * - the cluster's identity as recorded in the repository (identity.json: a GET);
 * - whether the store refuses a conditional write over an existing object (S3: the HEAD
 *   before each PUT), when a probe could tell;
 * - that a push to this repository read its metadata back (the HEAD after each PUT);
 * - whether the repository is marked encrypted (v1/encryption.json: a HEAD before the
 *   first write of a process, see plain-guard.ts and encrypting-store.ts).
 *
 * One small JSON file per repository and cluster in pg_wal/.pgha/ (where pgha's
 * asynchronous archiving keeps its files too), named repo-<hash>.json. It is a cache: it
 * is written without fsync, a missing, unreadable, stale, corrupt or foreign file only
 * costs those requests again, and failing to read or write it never fails a push.
 *
 * - Only a file handed over from pg_wal has a cache (archive_command's %p is
 *   pg_wal/NAME, relative to the data directory); pushing a file from anywhere else asks
 *   every time.
 * - Only the owner of pg_wal (the server's user, normally postgres) creates or writes
 *   it, directory mode 0700, files 0600: pgha run as root reads an entry but never leaves
 *   root-owned files where the server's user must write.
 * - An entry is trusted for FRESH_MS after the push that checked it, then checked again:
 *   an identity.json deleted by hand is written again, and a store that changed is
 *   probed again, within that time.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import type { ClusterIdentity } from "../repository/identity.js";

export const FRESH_MS = 10 * 60_000;

export interface RepoFacts {
  /** The cluster identity recorded in the repository. */
  identity: ClusterIdentity;
  /** What a probe found out; undefined when none could tell. */
  atomicIfAbsent: boolean | undefined;
  /** Whether the repository's encryption marker exists; undefined where nobody looked. */
  encrypted?: boolean | undefined;
}

export interface RepoFactsCache {
  /** The facts, when a push checked them less than FRESH_MS before `now`. */
  read(now: Date): Promise<RepoFacts | undefined>;
  /** Remembers facts checked at `now`. Never throws. */
  write(facts: RepoFacts, now: Date): Promise<void>;
}

interface Entry extends RepoFacts {
  format: 1;
  repository: string;
  cluster: string;
  checkedAt: string;
}

/**
 * The cache for pushes of `walFile` into `repository` (a string that names it fully, such
 * as its URL and S3 endpoint) under `cluster`, or undefined when walFile is not in pg_wal.
 */
export function repoFactsCache(
  walFile: string,
  repository: string,
  cluster: string,
  log: Logger,
): RepoFactsCache | undefined {
  const walDir = dirname(resolve(walFile));
  if (basename(walDir) !== "pg_wal") return undefined;
  const dir = join(walDir, ".pgha");
  const hash = createHash("sha256").update(`${repository}\n${cluster}`).digest("hex");
  const file = join(dir, `repo-${hash.slice(0, 16)}.json`);
  const skip = (what: string, error: unknown) =>
    log.debug(`${what} ${file}: ${error instanceof Error ? error.message : String(error)}`);
  return {
    async read(now) {
      let entry: Partial<Entry>;
      try {
        entry = JSON.parse(await readFile(file, "utf8")) as Partial<Entry>;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") skip("ignoring", error);
        return undefined;
      }
      const age = now.getTime() - Date.parse(entry.checkedAt ?? "");
      if (
        entry.format !== 1 ||
        entry.repository !== repository ||
        entry.cluster !== cluster ||
        !isIdentity(entry.identity, cluster) ||
        !(entry.atomicIfAbsent === undefined || typeof entry.atomicIfAbsent === "boolean") ||
        !(entry.encrypted === undefined || typeof entry.encrypted === "boolean") ||
        !(age >= 0 && age < FRESH_MS)
      ) {
        return undefined;
      }
      return {
        identity: entry.identity,
        atomicIfAbsent: entry.atomicIfAbsent,
        ...(entry.encrypted === undefined ? {} : { encrypted: entry.encrypted }),
      };
    },
    async write(facts, now) {
      const entry: Entry = {
        format: 1,
        repository,
        cluster,
        checkedAt: now.toISOString(),
        identity: facts.identity,
        atomicIfAbsent: facts.atomicIfAbsent,
        ...(facts.encrypted === undefined ? {} : { encrypted: facts.encrypted }),
      };
      const tmp = `${file}.tmp-${randomBytes(4).toString("hex")}`;
      try {
        const owner = (await stat(walDir)).uid;
        if (process.geteuid && owner !== process.geteuid()) {
          log.debug(`not writing ${file}: pg_wal belongs to uid ${owner}, not to this user`);
          return;
        }
        await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "EEXIST") throw error;
        });
        await writeFile(tmp, `${JSON.stringify(entry)}\n`, { mode: 0o600, flag: "wx" });
        await rename(tmp, file);
      } catch (error) {
        skip("cannot write", error);
        await unlink(tmp).catch(() => undefined);
      }
    },
  };
}

function isIdentity(value: unknown, cluster: string): value is ClusterIdentity {
  const v = value as Partial<ClusterIdentity> | undefined;
  return (
    typeof v?.systemIdentifier === "string" &&
    typeof v.walSegmentSize === "number" &&
    typeof v.walMagic === "string" &&
    v.cluster === cluster
  );
}

/** The cache for the repository and cluster a configuration names, for WAL files in pg_wal. */
export function repoFactsFor(
  config: Config,
  walFile: string,
  log: Logger,
): RepoFactsCache | undefined {
  // The same bucket and prefix behind another endpoint is another repository.
  const endpoint =
    config.repo.kind === "s3" && config.s3.endpoint ? ` at ${config.s3.endpoint}` : "";
  return repoFactsCache(walFile, `${config.repo.url}${endpoint}`, config.cluster, log);
}
