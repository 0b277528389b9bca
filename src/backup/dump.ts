/**
 * takeDumpSet: pg_dumpall --globals-only plus pg_dump -Fc of each database, each streamed
 * from the program into the repository, then the manifest, last. pg_dump runs with -Z0
 * and pgha compresses with zstd: about a third of pg_dump's own zlib output, in the same
 * time (measured on pgbench data). A failing program fails the whole set: its objects are
 * removed and no manifest is written, so it is never listed.
 */
import type { Compression } from "../compress/compression.js";
import { ClusterMismatchError, UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import { type ClientTools, dbnameArg } from "../pg/client-tools.js";
import type { PgServer } from "../pg/server.js";
import { freshId } from "../repository/backup-manifest.js";
import {
  type DumpDatabase,
  type DumpManifest,
  writeDumpManifest,
} from "../repository/dump-manifest.js";
import { readIdentity } from "../repository/identity.js";
import { dumpObjectKey, dumpPrefix } from "../repository/keys.js";
import { acquireLock } from "../repository/lock.js";
import type { ObjectStore } from "../storage/object-store.js";
import { programToStore } from "./child-stream.js";

export interface DumpDeps {
  store: ObjectStore;
  cluster: string;
  compression: Compression;
  server: PgServer;
  tools: ClientTools;
  /** libpq environment for the programs. */
  env: NodeJS.ProcessEnv;
  log: Logger;
  now: () => Date;
}

export interface DumpRequest {
  databases: string[];
  noRolePasswords: boolean;
  label: string | undefined;
  pin: boolean;
}

export async function takeDumpSet(deps: DumpDeps, request: DumpRequest): Promise<DumpManifest> {
  const facts = await deps.server.basics();
  const identity = await readIdentity(deps.store, deps.cluster);
  if (
    identity &&
    facts.systemIdentifier !== undefined &&
    identity.systemIdentifier !== facts.systemIdentifier
  ) {
    throw new ClusterMismatchError(
      `the server is system ${facts.systemIdentifier} but cluster '${deps.cluster}' in ${deps.store.url} is system ${identity.systemIdentifier}`,
      "dump into the cluster name this server archives under (--cluster / PGHA_CLUSTER)",
    );
  }
  const all = await deps.server.query<{ name: string; owner: string }>(
    `SELECT datname AS name, pg_get_userbyid(datdba) AS owner FROM pg_database
      WHERE datallowconn AND NOT datistemplate ORDER BY datname`,
  );
  const wanted =
    request.databases.length > 0 ? [...new Set(request.databases)] : all.map((d) => d.name);
  for (const name of wanted) {
    if (!all.some((d) => d.name === name)) {
      throw new UsageError(
        `database '${name}' does not exist or does not allow connections`,
        `the server has: ${all.map((d) => d.name).join(", ")}`,
      );
    }
  }

  // Dumps do not block backups: they take a lock of their own (prune takes both).
  const lock = await acquireLock(deps.store, deps.cluster, {
    name: "dump",
    purpose: "dump",
    ttlMs: 5 * 60_000,
    now: deps.now,
    log: deps.log,
  });
  let id: string;
  try {
    id = await freshId(deps.store, (candidate) => dumpPrefix(deps.cluster, candidate), deps.now());
  } catch (error) {
    await lock.release();
    throw error;
  }
  const startTime = deps.now();
  try {
    const globals = await programToStore(
      {
        program: deps.tools.path("pg_dumpall"),
        args: [
          "--globals-only",
          "--no-password",
          ...(request.noRolePasswords ? ["--no-role-passwords"] : []),
        ],
        env: deps.env,
        what: "pg_dumpall --globals-only",
      },
      deps.store,
      dumpObjectKey(deps.cluster, id, "globals"),
      deps.compression,
    );
    const databases: DumpDatabase[] = [];
    for (const [index, name] of wanted.entries()) {
      deps.log.info(`dumping database "${name}"`);
      const object = await programToStore(
        {
          program: deps.tools.path("pg_dump"),
          // Keep pg_dump's own compression only when pgha stores without compressing.
          args: [
            "--format=custom",
            ...(deps.compression.algorithm === "zstd" ? ["--compress=0"] : []),
            "--no-password",
            "--dbname",
            dbnameArg(name),
          ],
          env: deps.env,
          what: `pg_dump of database "${name}"`,
        },
        deps.store,
        dumpObjectKey(deps.cluster, id, index + 1),
        deps.compression,
      );
      databases.push({
        ...object,
        name,
        owner: all.find((d) => d.name === name)?.owner ?? "",
        format: "custom",
      });
    }
    const manifest: DumpManifest = {
      format: 1,
      kind: "dump-set",
      id,
      cluster: deps.cluster,
      label: request.label ?? null,
      pinned: request.pin,
      startTime: startTime.toISOString(),
      stopTime: deps.now().toISOString(),
      pgVersion: facts.version,
      pgVersionNum: facts.versionNum,
      systemIdentifier: facts.systemIdentifier ?? identity?.systemIdentifier ?? "unknown",
      pgDumpVersion: String(deps.tools.major),
      noRolePasswords: request.noRolePasswords,
      globals,
      databases,
    };
    lock.check();
    await writeDumpManifest(deps.store, manifest);
    deps.log.info(`dump set ${id} complete: globals and ${databases.length} database(s)`);
    return manifest;
  } catch (error) {
    try {
      for await (const entry of deps.store.list(dumpPrefix(deps.cluster, id)))
        await deps.store.delete(entry.key);
    } catch (cleanup) {
      deps.log.warn(
        `could not remove the objects of failed dump set ${id}: ${(cleanup as Error).message}`,
      );
    }
    throw error;
  } finally {
    await lock.release().catch(() => undefined);
  }
}
