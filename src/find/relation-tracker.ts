/**
 * Follows pg_class through the WAL, from a backup's relation map on, and turns committed
 * transactions into findings: which relation a transaction dropped, truncated, rewrote, or
 * deleted rows from. Pure: fed pg_waldump lines (waldump-line.ts) and, for pg_class
 * inserts and updates, the new tuple read from the record (wal-record.ts).
 *
 * pg_class rows are known by their place (block, offset) in pg_class: the map records
 * each row's ctid, a heap UPDATE moves a row to a new place, a DELETE removes it. Changes
 * are held per transaction and applied at its COMMIT (with its committed
 * subtransactions); an ABORT throws them away. At COMMIT, each relation whose row existed
 * before and:
 *   - is gone: a DROP (DROP TABLE, or the drop of its schema or database object);
 *   - has a new relfilenode: storage replaced. A transaction that also created and
 *     dropped a relation of its own (the transient heap VACUUM FULL, CLUSTER and
 *     rewriting ALTER TABLEs swap storage with) or moved the relation to another
 *     tablespace rewrote it ("rewrite"); otherwise it is a TRUNCATE (the heap TRUNCATE
 *     record of wal_level = logical adds nothing: it does not name the database);
 *   - lost rows: heap DELETE records on its relfilenode, counted ("delete").
 * A transaction that committed before the map was read (its LSN) is already in the map.
 */

import { parseLsn } from "../wal/names.js";
import type { DatabaseRelations, RelationMap } from "./relation-map.js";
import type { NewTuple, PgClassFields } from "./wal-record.js";
import { pgClassFields } from "./wal-record.js";
import type { WalLine } from "./waldump-line.js";

export type FindingKind = "drop" | "truncate" | "rewrite" | "delete";

export interface RelationState {
  oid: number;
  name: string;
  namespace: number;
  relfilenode: number;
  tablespace: number;
  kind: string;
}

export interface Finding {
  kind: FindingKind;
  /** The top-level transaction id (recovery_target_xid). */
  xid: number;
  /** The commit record's LSN and time (ISO 8601, UTC). */
  lsn: string;
  time: string;
  database: string;
  /** schema.name as it was when the transaction began. */
  relation: string;
  oid: number;
  /** Rows deleted (kind "delete"). */
  rows?: number;
}

/** Which relations are looked for: a name, optionally schema-qualified. */
export interface RelationQuery {
  schema: string | undefined;
  name: string;
}

interface DatabaseState {
  info: DatabaseRelations;
  mapLsn: bigint;
  /** pg_class row place "blk/off" -> oid. */
  places: Map<string, number>;
  byOid: Map<number, RelationState>;
  /** "spc/db/relfilenode" -> oid. */
  byFile: Map<string, number>;
}

interface PendingChange {
  /** Order of arrival (WAL order). */
  seq: number;
  xid: number;
  db: number;
  place: string;
  /** The row now at the place, or null: the row there was deleted. */
  row: RelationState | null;
  /** For a delete: which relation's row it was (when known). */
  oid?: number;
}

interface PendingXact {
  changes: PendingChange[];
  /** "spc/db/rel" -> heap DELETE records. */
  deletes: Map<string, number>;
}

export class RelationTracker {
  private readonly dbs = new Map<number, DatabaseState>();
  private readonly pending = new Map<number, PendingXact>();
  /** Pending rows by "db:place", latest last, across open transactions. */
  private readonly pendingPlaces = new Map<string, PendingChange[]>();
  /** pg_class relation files: "spc/db/rel" -> db oid. */
  private readonly pgClassFiles = new Map<string, number>();

  constructor(
    map: RelationMap,
    private readonly options: {
      kinds: ReadonlySet<FindingKind>;
      query: RelationQuery;
      /** A deleting transaction is a finding from this many rows on. */
      minRows: number;
    },
  ) {
    for (const info of map.databases) {
      const state: DatabaseState = {
        info,
        mapLsn: parseLsn(info.lsn) ?? 0n,
        places: new Map(),
        byOid: new Map(),
        byFile: new Map(),
      };
      for (const [
        oid,
        relfilenode,
        tablespace,
        kind,
        namespace,
        name,
        blk,
        off,
      ] of info.relations) {
        const row = { oid, name, namespace, relfilenode, tablespace, kind };
        state.byOid.set(oid, row);
        if (blk >= 0) state.places.set(`${blk}/${off}`, oid);
        if (relfilenode !== 0) state.byFile.set(this.fileKey(state, row), oid);
      }
      this.dbs.set(info.oid, state);
      this.pgClassFiles.set(`${info.tablespace}/${info.oid}/${info.pgClassFilenode}`, info.oid);
    }
  }

  /** Whether heap records of this relation file ("spc/db/rel") matter. */
  wantsHeap(spcDbRel: string, op: string): boolean {
    if (this.pgClassFiles.has(spcDbRel)) return true;
    return op === "delete" && this.options.kinds.has("delete");
  }

  /** pg_class's file in each database, "spc/db/rel". */
  pgClassFileKeys(): string[] {
    return [...this.pgClassFiles.keys()];
  }

  /** Whether any transaction has changes waiting for its COMMIT or ABORT. */
  hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Whether a heap record on this file is a pg_class change whose new tuple is needed. */
  isPgClass(spc: number, db: number, rel: number): boolean {
    return this.pgClassFiles.has(`${spc}/${db}/${rel}`);
  }

  /** The earliest position any database's map was read at: where reading starts. */
  static startLsn(map: RelationMap): bigint | undefined {
    const lsns = map.databases.map((d) => parseLsn(d.lsn) ?? 0n);
    return lsns.length === 0 ? undefined : lsns.reduce((a, b) => (a < b ? a : b));
  }

  private fileKey(db: DatabaseState, row: RelationState): string {
    return `${row.tablespace === 0 ? db.info.tablespace : row.tablespace}/${db.info.oid}/${row.relfilenode}`;
  }

  private xact(xid: number): PendingXact {
    let x = this.pending.get(xid);
    if (!x) {
      x = { changes: [], deletes: new Map() };
      this.pending.set(xid, x);
    }
    return x;
  }

  /** The row at a place as the newest open change or the committed state has it. */
  private rowAt(db: DatabaseState, place: string): RelationState | undefined {
    const open = this.pendingPlaces.get(`${db.info.oid}:${place}`)?.at(-1);
    if (open) return open.row ?? undefined;
    const oid = db.places.get(place);
    return oid === undefined ? undefined : db.byOid.get(oid);
  }

  private seq = 0;

  private record(change: Omit<PendingChange, "seq">): void {
    const full = { ...change, seq: this.seq++ };
    this.xact(change.xid).changes.push(full);
    const key = `${change.db}:${change.place}`;
    const list = this.pendingPlaces.get(key) ?? [];
    list.push(full);
    this.pendingPlaces.set(key, list);
  }

  /**
   * Takes one line. `tupleOf` reads the new tuple of a pg_class insert or update from the
   * WAL. Returns the findings of a transaction that committed with this line.
   */
  take(
    line: WalLine,
    tupleOf: (lsn: string, op: "insert" | "update", off: number) => NewTuple | undefined,
  ): Finding[] {
    switch (line.kind) {
      case "heap": {
        const key = `${line.rel.spc}/${line.rel.db}/${line.rel.rel}`;
        const db = this.dbs.get(line.rel.db);
        if (!db) return [];
        if (!this.pgClassFiles.has(key)) {
          if (line.op === "delete") {
            const x = this.xact(line.xid);
            x.deletes.set(key, (x.deletes.get(key) ?? 0) + 1);
          }
          return [];
        }
        if (line.op === "delete") {
          const place = `${line.blk}/${line.off}`;
          const old = this.rowAt(db, place);
          this.record({
            xid: line.xid,
            db: db.info.oid,
            place,
            row: null,
            ...(old ? { oid: old.oid } : {}),
          });
          return [];
        }
        let old: RelationState | undefined;
        if (line.op === "update") {
          const oldPlace = `${line.oldBlk}/${line.oldOff}`;
          old = this.rowAt(db, oldPlace);
          this.record({
            xid: line.xid,
            db: db.info.oid,
            place: oldPlace,
            row: null,
            ...(old ? { oid: old.oid } : {}),
          });
        }
        const tuple = tupleOf(line.lsn, line.op, line.off);
        const fields: PgClassFields = tuple ? pgClassFields(tuple, old ?? {}) : {};
        const row = completeRow(fields, old);
        this.record({
          xid: line.xid,
          db: db.info.oid,
          place: `${line.blk}/${line.off}`,
          row: row ?? null,
        });
        return [];
      }
      case "end":
        if (line.committed) return this.commit(line);
        this.abort([line.xid, ...line.subxacts]);
        return [];
      default:
        return [];
    }
  }

  private abort(xids: number[]): void {
    for (const xid of xids) {
      const x = this.pending.get(xid);
      if (!x) continue;
      this.pending.delete(xid);
      this.dropOpen(x.changes);
    }
  }

  private dropOpen(changes: PendingChange[]): void {
    for (const change of changes) {
      const key = `${change.db}:${change.place}`;
      const list = this.pendingPlaces.get(key)?.filter((c) => c !== change) ?? [];
      if (list.length === 0) this.pendingPlaces.delete(key);
      else this.pendingPlaces.set(key, list);
    }
  }

  private commit(line: Extract<WalLine, { kind: "end" }>): Finding[] {
    const xids = [line.xid, ...line.subxacts];
    const xacts = xids
      .map((xid) => this.pending.get(xid))
      .filter((x): x is PendingXact => x !== undefined);
    for (const xid of xids) this.pending.delete(xid);
    if (xacts.length === 0) return [];
    // Subtransactions interleave with their parent: back into WAL order.
    const changes = xacts.flatMap((x) => x.changes).sort((a, b) => a.seq - b.seq);
    this.dropOpen(changes);
    const deletes = new Map<string, number>();
    for (const x of xacts)
      for (const [key, n] of x.deletes) deletes.set(key, (deletes.get(key) ?? 0) + n);
    const commitLsn = parseLsn(line.lsn) ?? 0n;
    const findings: Finding[] = [];
    for (const db of this.dbs.values()) {
      if (commitLsn <= db.mapLsn) continue; // already in the map
      const dbChanges = changes.filter((c) => c.db === db.info.oid);
      const dbDeletes = [...deletes].filter(([key]) => key.split("/")[1] === String(db.info.oid));
      if (dbChanges.length === 0 && dbDeletes.length === 0) continue;
      const emit = (kind: FindingKind, row: RelationState, rows?: number) => {
        if (!this.options.kinds.has(kind) || !this.matches(db, row)) return;
        findings.push({
          kind,
          xid: line.xid,
          lsn: line.lsn,
          time: line.time,
          database: db.info.name,
          relation: `${this.schemaName(db, row.namespace)}.${row.name}`,
          oid: row.oid,
          ...(rows !== undefined ? { rows } : {}),
        });
      };
      // Heap DELETE counts, named by the files as they were before the commit.
      for (const [key, rows] of dbDeletes) {
        const oid = db.byFile.get(key);
        const row = oid === undefined ? undefined : db.byOid.get(oid);
        if (row && rows >= this.options.minRows) emit("delete", row, rows);
      }
      // Apply in WAL order; per relation: its row before, its last row, whether one is left
      // (an UPDATE deletes the old place, then fills the new one).
      const before = new Map<number, RelationState | undefined>();
      const last = new Map<number, RelationState>();
      const alive = new Map<number, boolean>();
      for (const c of dbChanges) {
        const oid = c.row?.oid ?? c.oid;
        if (c.row === null) db.places.delete(c.place);
        else db.places.set(c.place, c.row.oid);
        if (oid === undefined) continue;
        if (!before.has(oid)) before.set(oid, db.byOid.get(oid));
        if (c.row) last.set(oid, c.row);
        alive.set(oid, c.row !== null);
      }
      // A relation made and dropped again inside the transaction: the transient heap of a
      // rewrite (VACUUM FULL, CLUSTER, ALTER TABLE ... TYPE).
      const transient = [...before].some(([oid, was]) => was === undefined && !alive.get(oid));
      for (const [oid, was] of before) {
        const now = alive.get(oid) ? (last.get(oid) ?? was) : undefined;
        if (was) db.byFile.delete(this.fileKey(db, was));
        if (now) {
          db.byOid.set(oid, now);
          if (now.relfilenode !== 0) db.byFile.set(this.fileKey(db, now), oid);
        } else db.byOid.delete(oid);
        if (!was) continue;
        if (!now) emit("drop", was);
        else if (now.relfilenode !== was.relfilenode && now.relfilenode !== 0)
          emit(transient || now.tablespace !== was.tablespace ? "rewrite" : "truncate", was);
      }
    }
    return findings;
  }

  private schemaName(db: DatabaseState, namespace: number): string {
    return db.info.namespaces[String(namespace)] ?? `schema#${namespace}`;
  }

  private matches(db: DatabaseState, row: RelationState): boolean {
    const q = this.options.query;
    if (row.name !== q.name) return false;
    return q.schema === undefined || this.schemaName(db, row.namespace) === q.schema;
  }
}

/** A row from a tuple's fields, completed from the old row; undefined without an oid. */
function completeRow(
  fields: PgClassFields,
  old: RelationState | undefined,
): RelationState | undefined {
  const oid = fields.oid ?? old?.oid;
  if (oid === undefined) return undefined;
  return {
    oid,
    name: fields.name ?? old?.name ?? `relation#${oid}`,
    namespace: fields.namespace ?? old?.namespace ?? 0,
    relfilenode: fields.relfilenode ?? old?.relfilenode ?? 0,
    tablespace: fields.tablespace ?? old?.tablespace ?? 0,
    kind: fields.kind ?? old?.kind ?? "?",
  };
}
