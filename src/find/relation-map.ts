/**
 * The relation map of a backup: for each database, every pg_class row with its storage
 * (relfilenode, tablespace), its schema-qualified name, its kind, the table an index or
 * TOAST table belongs to, and where the row is in pg_class (its ctid). `restore find`
 * names WAL records with it, without a running server, and follows pg_class rows through
 * the WAL by their ctid (relation-tracker.ts).
 *
 * Stored beside the manifest as backups/<id>/relations.json (checksummed JSON, FORMAT.md),
 * written before the manifest. Best effort: a database that cannot be read is left out
 * with a warning, and a failure never fails the backup.
 */
import { NotFoundError } from "../errors.js";
import type { Logger } from "../log.js";
import { getJson, putJson } from "../repository/json-object.js";
import { backupRelationsKey } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";

/** [oid, relfilenode (0: none), reltablespace (0: the database's), relkind, namespace oid, relname, ctid block, ctid offset, owning table oid (0: none)] */
export type RelationRow = [number, number, number, string, number, string, number, number, number];

export interface DatabaseRelations {
  oid: number;
  name: string;
  /** The database's default tablespace (pg_database.dattablespace). */
  tablespace: number;
  /** WAL position when the rows were read: transactions committed before it are in them. */
  lsn: string;
  /** pg_class's own relfilenode in this database (pg_relation_filenode('pg_class')). */
  pgClassFilenode: number;
  /** Schema names by oid. */
  namespaces: Record<string, string>;
  relations: RelationRow[];
  /** More relations than MAX_RELATIONS: the rest are left out. */
  truncated?: true;
}

export interface RelationMap {
  format: 1;
  takenAt: string;
  databases: DatabaseRelations[];
}

/** Per database: beyond it the map would weigh more than the backup's manifest is worth. */
export const MAX_RELATIONS = 500_000;

/** What the map is read through: one connection per database, closed after use. */
export interface DatabaseQuery {
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

const LSN_SQL =
  "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END)::text AS lsn";

/** The databases that allow connections (template0 does not). */
export async function listDatabases(
  server: Pick<DatabaseQuery, "query">,
): Promise<{ oid: number; name: string; tablespace: number }[]> {
  const rows = await server.query<{ oid: string; name: string; spc: string }>(
    "SELECT oid::text AS oid, datname AS name, dattablespace::text AS spc FROM pg_database WHERE datallowconn ORDER BY oid",
  );
  return rows.map((r) => ({ oid: Number(r.oid), name: r.name, tablespace: Number(r.spc) }));
}

/** One database's rows, in one snapshot taken after the LSN is read (see `lsn`). */
export async function readDatabaseRelations(
  db: { oid: number; name: string; tablespace: number },
  conn: Pick<DatabaseQuery, "query">,
): Promise<DatabaseRelations> {
  await conn.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    // The snapshot is taken by the first statement: one that reads the LSN too.
    const [head] = await conn.query<{ lsn: string; pgclass: string }>(
      `${LSN_SQL}, pg_relation_filenode('pg_class')::text AS pgclass`,
    );
    const namespaces: Record<string, string> = {};
    for (const n of await conn.query<{ oid: string; name: string }>(
      "SELECT oid::text AS oid, nspname AS name FROM pg_namespace",
    ))
      namespaces[n.oid] = n.name;
    const rows = await conn.query<Record<string, string>>(
      `SELECT c.oid::text AS oid, coalesce(pg_relation_filenode(c.oid), 0)::text AS fn,
              c.reltablespace::text AS spc, c.relkind::text AS kind, c.relnamespace::text AS nsp,
              c.relname AS name, c.ctid::text AS ctid,
              coalesce(i.indrelid, t.oid, 0)::text AS owner
         FROM pg_class c
         LEFT JOIN pg_index i ON i.indexrelid = c.oid
         LEFT JOIN pg_class t ON c.relkind = 't' AND t.reltoastrelid = c.oid
        ORDER BY c.oid LIMIT ${MAX_RELATIONS + 1}`,
    );
    const relations: RelationRow[] = rows.slice(0, MAX_RELATIONS).map((r) => {
      const ctid = /^\((\d+),(\d+)\)$/.exec(r.ctid ?? "");
      return [
        Number(r.oid),
        Number(r.fn),
        Number(r.spc),
        String(r.kind),
        Number(r.nsp),
        String(r.name),
        Number(ctid?.[1] ?? -1),
        Number(ctid?.[2] ?? -1),
        Number(r.owner),
      ];
    });
    return {
      ...db,
      lsn: head?.lsn ?? "0/0",
      pgClassFilenode: Number(head?.pgclass ?? 1259),
      namespaces,
      relations,
      ...(rows.length > MAX_RELATIONS ? { truncated: true as const } : {}),
    };
  } finally {
    await conn.query("COMMIT").catch(() => undefined);
  }
}

/**
 * Every connectable database's relations, one short-lived connection each. A database
 * that cannot be read is left out (warned); the map is for naming, not for restoring.
 */
export async function collectRelationMap(
  server: Pick<DatabaseQuery, "query">,
  connect: (database: string) => Promise<DatabaseQuery>,
  log: Logger,
  now: Date,
): Promise<RelationMap> {
  const databases: DatabaseRelations[] = [];
  for (const db of await listDatabases(server)) {
    let conn: DatabaseQuery | undefined;
    try {
      conn = await connect(db.name);
      const rels = await readDatabaseRelations(db, conn);
      if (rels.truncated)
        log.warn(
          `relation map: database ${db.name} has more than ${MAX_RELATIONS} relations; the rest are not named`,
        );
      databases.push(rels);
    } catch (error) {
      log.warn(`relation map: database ${db.name} left out: ${(error as Error).message}`);
    } finally {
      await conn?.close();
    }
  }
  return { format: 1, takenAt: now.toISOString(), databases };
}

export async function writeRelationMap(
  store: ObjectStore,
  cluster: string,
  backupId: string,
  map: RelationMap,
): Promise<void> {
  await putJson(store, backupRelationsKey(cluster, backupId), map);
}

/** The map of a backup, or undefined for a backup taken without one (older pgha). */
export async function readRelationMap(
  store: ObjectStore,
  cluster: string,
  backupId: string,
): Promise<RelationMap | undefined> {
  try {
    return await getJson<RelationMap>(
      store,
      backupRelationsKey(cluster, backupId),
      () => new NotFoundError(`backup ${backupId} has no relation map`),
    );
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}
