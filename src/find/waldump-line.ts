/**
 * One line of `pg_waldump` (PostgreSQL 15+, run with TZ=UTC and -r Heap -r Transaction
 * -r Storage) read into what `restore find` needs. Pure. Lines it has no use for read as
 * undefined; this runs once per WAL record, so cheap string tests come before any regex.
 *
 *   rmgr: Transaction len (rec/tot): 34/34, tx: 726, lsn: 0/0152C1C0, prev 0/0152C130, desc: COMMIT 2026-12-01 20:24:17.692609 UTC; rels: base/5/16388; subxacts: 727
 *   rmgr: Heap len (rec/tot): 123/123, tx: 726, lsn: 0/0152A2F0, prev 0/0152A2C0, desc: UPDATE off 3 xmax 726 flags 0x60 ; new off 8 xmax 0, blkref #0: rel 1663/5/1259 blk 0
 */

export interface RelFile {
  spc: number;
  db: number;
  rel: number;
}

export type WalLine =
  | {
      kind: "end";
      /** COMMIT, or ABORT: a transaction (or subtransaction, on ABORT) ended. */
      committed: boolean;
      xid: number;
      lsn: string;
      /** ISO 8601, UTC. */
      time: string;
      subxacts: number[];
    }
  | { kind: "assignment"; top: number; subxacts: number[] }
  | {
      kind: "heap";
      op: "insert" | "update" | "delete";
      xid: number;
      lsn: string;
      rel: RelFile;
      /** The block of the (new) tuple, its offset; for an update the old tuple's too. */
      blk: number;
      off: number;
      oldBlk?: number;
      oldOff?: number;
    };

const TX = "tx: ";
const LSN = "lsn: ";
const DESC = "desc: ";

function numberAfter(line: string, marker: string, from = 0): number {
  const at = line.indexOf(marker, from);
  if (at < 0) return Number.NaN;
  let i = at + marker.length;
  while (line.charCodeAt(i) === 32) i++;
  let n = 0;
  let digits = 0;
  for (let c = line.charCodeAt(i); c >= 48 && c <= 57; c = line.charCodeAt(++i)) {
    n = n * 10 + (c - 48);
    digits++;
  }
  return digits === 0 ? Number.NaN : n;
}

function wordAfter(line: string, marker: string): string {
  const at = line.indexOf(marker);
  if (at < 0) return "";
  const start = at + marker.length;
  const end = line.indexOf(",", start);
  return line.slice(start, end < 0 ? undefined : end).trim();
}

/** "2026-12-01 20:24:17.692609 UTC" -> "2026-12-01T20:24:17.692609Z". */
export function waldumpTimeToIso(text: string): string {
  return text.replace(" UTC", "Z").replace(" ", "T");
}

function numbersIn(text: string): number[] {
  return text
    .trim()
    .split(/\s+/)
    .filter((w) => /^\d+$/.test(w))
    .map(Number);
}

/** The part of a COMMIT/ABORT description after "<label>: ", up to the next "; ". */
function section(desc: string, label: string): string | undefined {
  const at = desc.indexOf(`; ${label}:`);
  if (at < 0) return undefined;
  const start = at + label.length + 3;
  const end = desc.indexOf(";", start);
  return desc.slice(start, end < 0 ? undefined : end);
}

const BLKREF = /blkref #(\d+): rel (\d+)\/(\d+)\/(\d+)(?: fork \w+)? blk (\d+)/g;

/**
 * Reads one line; `wantHeap(rel)` says whether heap records of a relation file matter
 * (pg_class always, others for DELETE counts), before the line is taken apart.
 */
export function parseWaldumpLine(
  line: string,
  wantHeap: (spcDbRel: string, op: string) => boolean,
): WalLine | undefined {
  if (!line.startsWith("rmgr: ")) return undefined;
  const descAt = line.indexOf(DESC);
  if (descAt < 0) return undefined;
  const desc = line.slice(descAt + DESC.length);
  const rmgr = line.slice(6, line.indexOf(" ", 6));
  if (rmgr === "Heap") {
    const op = desc.slice(0, desc.indexOf(" "));
    const kind =
      op === "DELETE"
        ? "delete"
        : op === "UPDATE" || op === "HOT_UPDATE"
          ? "update"
          : op === "INSERT" || op === "INSERT+INIT"
            ? "insert"
            : undefined;
    if (kind === undefined) return undefined;
    const relAt = desc.indexOf("blkref #0: rel ");
    if (relAt < 0) return undefined;
    const relEnd = desc.indexOf(" ", relAt + 15);
    const spcDbRel = desc.slice(relAt + 15, relEnd);
    if (!wantHeap(spcDbRel, kind)) return undefined;
    const refs = new Map<number, { rel: RelFile; blk: number }>();
    for (const m of desc.matchAll(BLKREF)) {
      refs.set(Number(m[1]), {
        rel: { spc: Number(m[2]), db: Number(m[3]), rel: Number(m[4]) },
        blk: Number(m[5]),
      });
    }
    const ref0 = refs.get(0);
    if (!ref0) return undefined;
    const base = { xid: numberAfter(line, TX), lsn: wordAfter(line, LSN), rel: ref0.rel };
    if (kind === "update") {
      // Block 0 is the new tuple's page; block 1, when present, the old tuple's.
      return {
        kind: "heap",
        op: kind,
        ...base,
        blk: ref0.blk,
        off: numberAfter(desc, "new off "),
        oldBlk: refs.get(1)?.blk ?? ref0.blk,
        oldOff: numberAfter(desc, "off "),
      };
    }
    return { kind: "heap", op: kind, ...base, blk: ref0.blk, off: numberAfter(desc, "off ") };
  }
  if (rmgr === "Transaction") {
    const committed = desc.startsWith("COMMIT ");
    if (committed || desc.startsWith("ABORT ")) {
      const rest = desc.slice(committed ? 7 : 6);
      const semi = rest.indexOf(";");
      const time = waldumpTimeToIso((semi < 0 ? rest : rest.slice(0, semi)).trim());
      const sub = section(desc, "subxacts");
      return {
        kind: "end",
        committed,
        xid: numberAfter(line, TX),
        lsn: wordAfter(line, LSN),
        time,
        subxacts: sub === undefined ? [] : numbersIn(sub),
      };
    }
    if (desc.startsWith("ASSIGNMENT ")) {
      // "ASSIGNMENT xtop 735: subxacts: 736 737"
      const top = numberAfter(desc, "xtop ");
      const at = desc.indexOf("subxacts:");
      return { kind: "assignment", top, subxacts: at < 0 ? [] : numbersIn(desc.slice(at + 9)) };
    }
    return undefined;
  }
  return undefined;
}
