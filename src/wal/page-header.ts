/**
 * The long page header at the start of every WAL segment (XLogLongPageHeaderData,
 * little-endian on every platform PostgreSQL ships for):
 *
 *   offset  0  uint16 xlp_magic        WAL format version
 *   offset  2  uint16 xlp_info         flags; XLP_LONG_HEADER (0x0002) on a segment's first page
 *   offset  4  uint32 xlp_tli          timeline of the page
 *   offset  8  uint64 xlp_pageaddr     LSN of the page start = segment start
 *   offset 16  uint32 xlp_rem_len
 *   offset 24  uint64 xlp_sysid        the cluster's system identifier
 *   offset 32  uint32 xlp_seg_size     wal_segment_size
 *   offset 36  uint32 xlp_xlog_blcksz  WAL block size
 */
import { RefusedError } from "../errors.js";
import {
  formatLsn,
  isValidSegmentSize,
  segmentStartLsn,
  segmentsPerLog,
  type WalSegmentFile,
} from "./names.js";

export const LONG_PAGE_HEADER_SIZE = 40;
const XLP_LONG_HEADER = 0x0002;

/** xlp_magic of each PostgreSQL major version (src/include/access/xlog_internal.h). */
const MAGIC_TO_VERSION: Record<number, string> = {
  53395: "9.6",
  53399: "10",
  53400: "11",
  53505: "12",
  53510: "13",
  53517: "14",
  53520: "15",
  53523: "16",
  53526: "17",
  53528: "18",
};

export interface LongPageHeader {
  magic: number;
  /** PostgreSQL major version for the magic, or undefined when pgha does not know it. */
  pgVersion: string | undefined;
  timeline: number;
  pageAddress: bigint;
  systemIdentifier: string;
  segmentSize: number;
  blockSize: number;
}

export function parseLongPageHeader(bytes: Uint8Array): LongPageHeader | undefined {
  if (bytes.length < LONG_PAGE_HEADER_SIZE) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const info = view.getUint16(2, true);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  const magic = view.getUint16(0, true);
  return {
    magic,
    pgVersion: MAGIC_TO_VERSION[magic],
    timeline: view.getUint32(4, true),
    pageAddress: view.getBigUint64(8, true),
    systemIdentifier: view.getBigUint64(24, true).toString(),
    segmentSize: view.getUint32(32, true),
    blockSize: view.getUint32(36, true),
  };
}

/**
 * Checks that a segment (or .partial) file is what its name says. Returns the header.
 * The page's timeline may be lower than the name's: the first segment of a new
 * timeline starts as a copy of the old timeline's segment, header included.
 */
export function checkSegmentHeader(
  file: WalSegmentFile,
  head: Uint8Array,
  fileSize: number,
): LongPageHeader {
  const header = parseLongPageHeader(head);
  const refuse = (why: string) =>
    new RefusedError(
      `${file.name} is not a valid WAL segment: ${why}`,
      "pass the path PostgreSQL gives (%p); only WAL segments, .partial, .backup and .history files are archived",
    );
  if (!header) throw refuse("no long page header at its start");
  if (!isValidSegmentSize(header.segmentSize)) {
    throw refuse(
      `header segment size ${header.segmentSize} is not a power of two from 1 MiB to 1 GiB`,
    );
  }
  if (fileSize !== header.segmentSize) {
    throw refuse(
      `file size ${fileSize} differs from the header's segment size ${header.segmentSize}`,
    );
  }
  if (file.seg >= segmentsPerLog(header.segmentSize)) {
    throw refuse(`segment part of the name is too large for ${header.segmentSize}-byte segments`);
  }
  if (header.timeline === 0 || header.timeline > file.timeline) {
    throw refuse(`page timeline ${header.timeline} is not on the name's timeline ${file.timeline}`);
  }
  const expected = segmentStartLsn(file, header.segmentSize);
  if (header.pageAddress !== expected) {
    throw refuse(
      `page address ${formatLsn(header.pageAddress)} differs from the name's ${formatLsn(expected)}`,
    );
  }
  return header;
}
