/**
 * Restoring from a dump set: globals through psql, a database through pg_restore, both
 * streamed from the repository. A database restore creates the target database itself
 * and drops it again if anything fails (pg_restore's error, a corrupt object), so a
 * failed restore changes nothing. fetchDumpSet writes the plain files instead.
 */
import { access, link, mkdir, open, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  describeSystemError,
  LocalIoError,
  PghaError,
  PostgresError,
  RefusedError,
  UsageError,
} from "../errors.js";
import { writeAll } from "../local-files.js";
import type { Logger } from "../log.js";
import { type ClientTools, dbnameArg } from "../pg/client-tools.js";
import type { PgServer } from "../pg/server.js";
import type { DumpDatabase, DumpManifest, DumpObject } from "../repository/dump-manifest.js";
import type { ObjectStore } from "../storage/object-store.js";
import { readAll } from "../storage/streams.js";
import { objectStream, storeToProgram } from "./child-stream.js";

export interface DumpRestoreDeps {
  store: ObjectStore;
  /** A connection to a maintenance database (postgres) of the target server. */
  server: PgServer;
  tools: ClientTools;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** SQLSTATE duplicate_object: a role or tablespace that exists already, expected on a live cluster. */
const ALREADY_EXISTS = "42710";

export async function restoreGlobals(deps: DumpRestoreDeps, manifest: DumpManifest): Promise<void> {
  // Globals are small: verify the whole object before psql runs any of it.
  const { stream, verified } = await objectStream(deps.store, manifest.globals);
  const sql = await readAll(stream).catch((error: unknown) => settledFailure(verified, error));
  await verified;
  const { spawn } = await import("node:child_process");
  // VERBOSITY=verbose puts the SQLSTATE in every error line, whatever the server's language.
  const child = spawn(
    deps.tools.path("psql"),
    ["-X", "-q", "--no-password", "-v", "VERBOSITY=verbose", "-d", "postgres", "-f", "-"],
    { env: deps.env, stdio: ["pipe", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  child.stdin.on("error", () => undefined);
  child.stdin.end(sql);
  const code = await new Promise<number | null>((resolveCode) => {
    child.once("error", () => resolveCode(null));
    child.once("close", resolveCode);
  });
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  const errors = lines.filter((l) => {
    const state = /^psql:[^:]*:\d+: \S+:\s+([0-9A-Z]{5}): /.exec(l)?.[1];
    return state !== undefined ? state !== ALREADY_EXISTS : /\b(ERROR|FATAL):/.test(l);
  });
  if (code !== 0 || errors.length > 0) {
    const shown = (errors.length > 0 ? errors : lines.slice(-3)).slice(0, 3).join(" / ");
    throw new PostgresError(`restoring globals failed: ${shown || `psql exited with ${code}`}`, {
      hint: "roles and tablespaces that already exist are skipped (and have their attributes reset); the other errors need attention",
    });
  }
  deps.log.info(`globals of dump set ${manifest.id} restored`);
}

/**
 * Checks a database restore can go ahead: the dump set has the database and the target
 * does not exist. Runs before anything (globals included) is changed.
 */
export async function checkDatabaseRestore(
  deps: DumpRestoreDeps,
  manifest: DumpManifest,
  name: string,
  toDb: string | undefined,
): Promise<{ entry: DumpDatabase; target: string }> {
  const entry = manifest.databases.find((d) => d.name === name);
  if (!entry) {
    throw new UsageError(
      `dump set ${manifest.id} has no database '${name}'`,
      `it has: ${manifest.databases.map((d) => d.name).join(", ") || "none"}`,
    );
  }
  const target = toDb ?? name;
  const exists = await deps.server.query("SELECT 1 FROM pg_database WHERE datname = $1", [target]);
  if (exists.length > 0) {
    throw new RefusedError(
      `database '${target}' already exists; nothing was changed`,
      "restore under another name with --to-db NAME, or drop the database first",
    );
  }
  return { entry, target };
}

export async function restoreDatabase(
  deps: DumpRestoreDeps,
  manifest: DumpManifest,
  name: string,
  toDb: string | undefined,
): Promise<string> {
  const { entry, target } = await checkDatabaseRestore(deps, manifest, name, toDb);
  const sameName = target === name;
  if (!sameName) {
    // pgha's own CREATE claims the name atomically: if it exists by now, this fails and
    // nothing is dropped below.
    const owner = await deps.server.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [
      entry.owner,
    ]);
    await deps.server.query(
      `CREATE DATABASE ${quoteIdent(target)} TEMPLATE template0${owner.length > 0 ? ` OWNER ${quoteIdent(entry.owner)}` : ""}`,
    );
  }
  try {
    await storeToProgram(
      {
        program: deps.tools.path("pg_restore"),
        // With its own name, --create restores the database's properties too (owner, ACL, settings).
        args: [
          "--exit-on-error",
          "--no-password",
          ...(sameName ? ["--create", "--dbname", "postgres"] : ["--dbname", dbnameArg(target)]),
        ],
        env: deps.env,
        what: `pg_restore of database "${name}"${sameName ? "" : ` into "${target}"`}`,
      },
      deps.store,
      entry,
    );
  } catch (error) {
    // pg_restore --create failing on CREATE DATABASE means someone else made it meanwhile:
    // that database is not ours to drop.
    const lostRace = sameName && /database ".*" already exists/.test((error as Error).message);
    if (!lostRace) {
      const { versionNum } = await deps.server.basics();
      const force = versionNum >= 130000 ? " WITH (FORCE)" : "";
      await deps.server
        .query(`DROP DATABASE IF EXISTS ${quoteIdent(target)}${force}`)
        .catch((drop: Error) => {
          deps.log.error(
            `could not drop the partly restored database '${target}': ${drop.message}; drop it by hand`,
          );
        });
    }
    throw error;
  }
  deps.log.info(`database '${name}' of dump set ${manifest.id} restored as '${target}'`);
  return target;
}

/**
 * After an object's stream failed: the classified failure objectStream settles `verified`
 * with (IntegrityError for a corrupt object, StorageError for the storage), else `error`.
 */
async function settledFailure(verified: Promise<void>, error: unknown): Promise<never> {
  await verified;
  throw error;
}

/** File names for fetch: database names can hold any character. */
export function dumpFileNames(manifest: DumpManifest): Map<string, DumpObject> {
  const files = new Map<string, DumpObject>([["globals.sql", manifest.globals]]);
  for (const db of manifest.databases) {
    const base = db.name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_") || "_";
    let name = `${base}.dump`;
    for (let n = 2; files.has(name); n++) name = `${base}-${n}.dump`;
    files.set(name, db);
  }
  return files;
}

/** Writes the dump set's plain files (globals.sql, <database>.dump) into dir, verified. */
export async function fetchDumpSet(
  store: ObjectStore,
  manifest: DumpManifest,
  dir: string,
): Promise<string[]> {
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true });
  } catch (error) {
    throw new LocalIoError(`cannot create ${root}: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
  for (const name of dumpFileNames(manifest).keys()) {
    if (
      await access(join(root, name)).then(
        () => true,
        () => false,
      )
    ) {
      throw new UsageError(
        `${join(root, name)} exists already; nothing was written`,
        "fetch into a new directory",
      );
    }
  }
  const written: string[] = [];
  for (const [name, object] of dumpFileNames(manifest)) {
    const path = join(root, name);
    const tmp = join(root, `.pgha-tmp-${name}`);
    const { stream, verified } = await objectStream(store, object);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(tmp, "wx", 0o600);
    } catch (error) {
      stream.destroy();
      throw new LocalIoError(`cannot create ${tmp}: ${describeSystemError(error)}`);
    }
    try {
      const chunks = stream[Symbol.asyncIterator]();
      for (;;) {
        // A failing stream says why through `verified` (a corrupt object, the storage);
        // a failing write is the local disk's.
        const next = await chunks.next().catch((error: unknown) => settledFailure(verified, error));
        if (next.done) break;
        await writeAll(handle, next.value as Buffer);
      }
      await verified;
      await handle.sync();
      await handle.close();
      // link(2) never replaces a file that appeared meanwhile.
      try {
        await link(tmp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") {
          throw new UsageError(
            `${path} exists already; nothing was overwritten`,
            "fetch into a new directory",
          );
        }
        throw error;
      }
      await unlink(tmp);
      written.push(path);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      if (error instanceof PghaError) throw error;
      throw new LocalIoError(`cannot write ${path}: ${describeSystemError(error)}`, {
        cause: error,
      });
    }
  }
  return written;
}
