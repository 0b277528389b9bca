/** Builders for synthetic WAL files: a long page header plus filler, as PostgreSQL lays them out. */
import { randomBytes } from "node:crypto";

export interface SegmentSpec {
  systemIdentifier?: bigint;
  segmentSize?: number;
  /** Timeline in the page header (defaults to the name's). */
  pageTimeline?: number;
  magic?: number;
  /** Overrides the page address (defaults to the name's segment start). */
  pageAddress?: bigint;
  longHeader?: boolean;
}

export const SYSID = 7300000000000000001n;

export function segmentName(timeline: number, log: number, seg: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");
  return `${hex(timeline)}${hex(log)}${hex(seg)}`;
}

/** Bytes of a WAL segment named by timeline/log/seg. Filler is random so files differ. */
export function makeSegment(
  timeline: number,
  log: number,
  seg: number,
  spec: SegmentSpec = {},
): Buffer {
  const size = spec.segmentSize ?? 1 << 20;
  const buf = Buffer.alloc(size);
  randomBytes(4096).copy(buf, 64);
  buf.writeUInt16LE(spec.magic ?? 0xd110, 0);
  buf.writeUInt16LE(spec.longHeader === false ? 0x0000 : 0x0002, 2);
  buf.writeUInt32LE(spec.pageTimeline ?? timeline, 4);
  const segsPerLog = Math.floor(0x1_0000_0000 / size);
  const start = (BigInt(log) * BigInt(segsPerLog) + BigInt(seg)) * BigInt(size);
  buf.writeBigUInt64LE(spec.pageAddress ?? start, 8);
  buf.writeBigUInt64LE(spec.systemIdentifier ?? SYSID, 24);
  buf.writeUInt32LE(size, 32);
  buf.writeUInt32LE(8192, 36);
  return buf;
}
