/**
 * Reads one WAL record's bytes from segment files and takes out what pg_waldump does not
 * print: the new pg_class tuple of a heap INSERT or UPDATE (PostgreSQL 15+ record layout,
 * xlogrecord.h, heapam_xlog.h). Pure but for the `read` callback.
 *
 * A record starts at its LSN and may continue over page headers (24 bytes; 40 at a
 * segment's start) into the following pages and segments.
 */

const XLOG_BLCKSZ = 8192;
const BLCKSZ = 8192;
const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const RECORD_HEADER = 24;

/** Reads `length` bytes of WAL at `lsn` (within one segment). */
export type WalReader = (lsn: bigint, length: number) => Buffer;

/** The raw record at `lsn`: header, block headers, block data and main data. */
export function readRecordBytes(read: WalReader, lsn: bigint, segmentSize: number): Buffer {
  const parts: Buffer[] = [];
  let pos = lsn;
  let need = -1;
  let got = 0;
  while (need < 0 || got < need) {
    const inPage = Number(pos % BigInt(XLOG_BLCKSZ));
    if (inPage === 0) {
      pos += BigInt(pos % BigInt(segmentSize) === 0n ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER);
      continue;
    }
    const room = XLOG_BLCKSZ - inPage;
    // The total length (first 4 bytes) is always on the record's first page.
    const want = need < 0 ? Math.min(room, RECORD_HEADER) : Math.min(room, need - got);
    const chunk = read(pos, want);
    parts.push(chunk);
    got += chunk.length;
    pos += BigInt(chunk.length);
    if (need < 0 && got >= 4) need = Buffer.concat(parts).readUInt32LE(0);
    if (chunk.length === 0) throw new Error(`cannot read WAL at ${lsn.toString(16)}`);
  }
  return Buffer.concat(parts).subarray(0, need);
}

export interface RecordBlock {
  id: number;
  /** The full page (hole filled with zeros), when the record carries an uncompressed image. */
  page?: Buffer;
  /** An image that is compressed: not read. */
  compressedImage?: true;
  data?: Buffer;
}

export interface DecodedRecord {
  blocks: Map<number, RecordBlock>;
  main: Buffer;
}

const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_HAS_DATA = 0x20;
const BKPBLOCK_SAME_REL = 0x80;
const BKPIMAGE_HAS_HOLE = 0x01;
const BKPIMAGE_COMPRESSED = 0x04 | 0x08 | 0x10;

/** DecodeXLogRecord, for the parts needed here. */
export function decodeRecord(record: Buffer): DecodedRecord {
  let p = RECORD_HEADER;
  const total = record.length;
  let datatotal = 0;
  let mainLength = 0;
  const headers: {
    id: number;
    flags: number;
    dataLength: number;
    image?: { length: number; holeOffset: number; holeLength: number; info: number };
  }[] = [];
  while (total - p > datatotal) {
    const id = record.readUInt8(p++);
    if (id === 255) {
      mainLength = record.readUInt8(p++);
      datatotal += mainLength;
      break;
    }
    if (id === 254) {
      mainLength = record.readUInt32LE(p);
      p += 4;
      datatotal += mainLength;
      break;
    }
    if (id === 253) {
      p += 2; // replication origin
      continue;
    }
    if (id === 252) {
      p += 4; // top-level xid
      continue;
    }
    const flags = record.readUInt8(p++);
    const dataLength = record.readUInt16LE(p);
    p += 2;
    datatotal += dataLength;
    const header: (typeof headers)[number] = { id, flags, dataLength };
    if (flags & BKPBLOCK_HAS_IMAGE) {
      const length = record.readUInt16LE(p);
      const holeOffset = record.readUInt16LE(p + 2);
      const info = record.readUInt8(p + 4);
      p += 5;
      let holeLength = 0;
      if (info & BKPIMAGE_HAS_HOLE) {
        if (info & BKPIMAGE_COMPRESSED) {
          holeLength = record.readUInt16LE(p);
          p += 2;
        } else holeLength = BLCKSZ - length;
      }
      header.image = { length, holeOffset, holeLength, info };
      datatotal += length;
    }
    if (!(flags & BKPBLOCK_SAME_REL)) p += 12; // RelFileNode
    p += 4; // BlockNumber
    headers.push(header);
  }
  const blocks = new Map<number, RecordBlock>();
  for (const h of headers) {
    const block: RecordBlock = { id: h.id };
    if (h.image) {
      const bytes = record.subarray(p, p + h.image.length);
      p += h.image.length;
      if (h.image.info & BKPIMAGE_COMPRESSED) block.compressedImage = true;
      else {
        block.page = Buffer.concat([
          bytes.subarray(0, h.image.holeOffset),
          Buffer.alloc(h.image.holeLength),
          bytes.subarray(h.image.holeOffset),
        ]);
      }
    }
    if (h.flags & BKPBLOCK_HAS_DATA) {
      block.data = record.subarray(p, p + h.dataLength);
      p += h.dataLength;
    }
    blocks.set(h.id, block);
  }
  return { blocks, main: record.subarray(p, p + mainLength) };
}

/**
 * The user data of the new tuple of a heap INSERT or UPDATE, and for an UPDATE how many of
 * its first and last bytes are the old tuple's (the record leaves them out). Undefined
 * when the record does not carry it in a readable form (a compressed page image).
 */
export interface NewTuple {
  /** Bytes of the tuple's data, from `prefix` on. */
  data: Buffer;
  prefix: number;
  suffix: number;
}

const SIZE_OF_HEAP_HEADER = 5; // xl_heap_header
const SIZEOF_HEAP_TUPLE_HEADER = 23;
const XLH_UPDATE_PREFIX_FROM_OLD = 1 << 5;
const XLH_UPDATE_SUFFIX_FROM_OLD = 1 << 6;

/** The tuple at `offset` of a page image: its data after t_hoff. */
function tupleFromPage(page: Buffer, offset: number): Buffer | undefined {
  const item = 24 + 4 * (offset - 1);
  if (item + 4 > page.length) return undefined;
  const word = page.readUInt32LE(item);
  const lpOff = word & 0x7fff;
  const lpFlags = (word >>> 15) & 0x3;
  const lpLen = word >>> 17;
  if (lpFlags !== 1 || lpOff + lpLen > page.length) return undefined; // LP_NORMAL
  const tHoff = page.readUInt8(lpOff + 22);
  return page.subarray(lpOff + tHoff, lpOff + lpLen);
}

export function newTupleOf(
  decoded: DecodedRecord,
  op: "insert" | "update",
  offset: number,
): NewTuple | undefined {
  const block = decoded.blocks.get(0);
  if (!block) return undefined;
  if (block.page) {
    const data = tupleFromPage(block.page, offset);
    return data ? { data, prefix: 0, suffix: 0 } : undefined;
  }
  if (!block.data) return undefined;
  let p = 0;
  let prefix = 0;
  let suffix = 0;
  if (op === "update") {
    // xl_heap_update: old_xmax(4) old_offnum(2) old_infobits_set(1) flags(1) ...
    const flags = decoded.main.readUInt8(7);
    if (flags & XLH_UPDATE_PREFIX_FROM_OLD) {
      prefix = block.data.readUInt16LE(p);
      p += 2;
    }
    if (flags & XLH_UPDATE_SUFFIX_FROM_OLD) {
      suffix = block.data.readUInt16LE(p);
      p += 2;
    }
  }
  const tHoff = block.data.readUInt8(p + 4);
  p += SIZE_OF_HEAP_HEADER;
  // The null bitmap and padding (t_hoff - 23 bytes) come before the data.
  p += tHoff - SIZEOF_HEAP_TUPLE_HEADER;
  return { data: block.data.subarray(p), prefix, suffix };
}

/** The pg_class fields find follows; undefined where the record left them out. */
export interface PgClassFields {
  oid?: number;
  name?: string;
  namespace?: number;
  relfilenode?: number;
  tablespace?: number;
  kind?: string;
}

/** Byte offsets of pg_class's leading fixed-width columns (PostgreSQL 15 and 16). */
const FIELDS = {
  oid: [0, 4],
  name: [4, 64],
  namespace: [68, 4],
  relfilenode: [88, 4],
  tablespace: [92, 4],
  kind: [115, 1],
} as const;

const HEAD = 116;

function encodeFields(fields: PgClassFields): { bytes: Buffer; known: Uint8Array } {
  const bytes = Buffer.alloc(HEAD);
  const known = new Uint8Array(HEAD);
  const put = (name: keyof typeof FIELDS, write: () => void) => {
    const [at, size] = FIELDS[name];
    write();
    known.fill(1, at, at + size);
  };
  if (fields.oid !== undefined) put("oid", () => bytes.writeUInt32LE(fields.oid ?? 0, 0));
  if (fields.name !== undefined) put("name", () => bytes.write(fields.name ?? "", 4, 63, "utf8"));
  if (fields.namespace !== undefined)
    put("namespace", () => bytes.writeUInt32LE(fields.namespace ?? 0, 68));
  if (fields.relfilenode !== undefined)
    put("relfilenode", () => bytes.writeUInt32LE(fields.relfilenode ?? 0, 88));
  if (fields.tablespace !== undefined)
    put("tablespace", () => bytes.writeUInt32LE(fields.tablespace ?? 0, 92));
  if (fields.kind !== undefined)
    put("kind", () => bytes.write(fields.kind ?? "", 115, 1, "latin1"));
  return { bytes, known };
}

/**
 * The fields of a new pg_class tuple. Bytes the record left out (an UPDATE's prefix and
 * suffix, equal to the old tuple's) are taken from `old`, the fields the old tuple had; a
 * field with a byte known from neither is left out. The suffix is placed assuming the old
 * tuple had the new one's length (true unless a variable-width column changed size).
 */
export function pgClassFields(tuple: NewTuple, old: PgClassFields = {}): PgClassFields {
  const total = tuple.prefix + tuple.data.length + tuple.suffix;
  const from = encodeFields(old);
  const bytes = Buffer.alloc(HEAD);
  const known = new Uint8Array(HEAD);
  for (let i = 0; i < HEAD && i < total; i++) {
    if (i < tuple.prefix || i >= total - tuple.suffix) {
      bytes[i] = from.bytes[i] ?? 0;
      known[i] = from.known[i] ?? 0;
    } else {
      bytes[i] = tuple.data[i - tuple.prefix] ?? 0;
      known[i] = 1;
    }
  }
  const has = (name: keyof typeof FIELDS) => {
    const [at, size] = FIELDS[name];
    for (let i = at; i < at + size; i++) if (known[i] !== 1) return false;
    return true;
  };
  const out: PgClassFields = {};
  if (has("oid")) out.oid = bytes.readUInt32LE(0);
  if (has("name")) {
    const name = bytes.subarray(4, 68);
    const end = name.indexOf(0);
    out.name = name.subarray(0, end < 0 ? 64 : end).toString("utf8");
  }
  if (has("namespace")) out.namespace = bytes.readUInt32LE(68);
  if (has("relfilenode")) out.relfilenode = bytes.readUInt32LE(88);
  if (has("tablespace")) out.tablespace = bytes.readUInt32LE(92);
  if (has("kind")) out.kind = String.fromCharCode(bytes.readUInt8(115));
  return out;
}
