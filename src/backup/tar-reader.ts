/**
 * A push parser of tar streams, fed in chunks of any size, that hands out file data as
 * views into the chunk it was given (valid until the handler returns): restoring needs no
 * buffer per chunk, so a job's memory does not grow with what it extracts. It reads what
 * pgha's bundles and tar-stream's pack write (ustar with a name prefix, pax records for
 * long or non-ASCII names and link targets, base-256 sizes) and GNU long names; any other
 * entry type is reported as such, for the caller to refuse. A header whose checksum does
 * not match fails, as tar-stream does.
 */
import { BLOCK } from "./tar-header.js";

export type TarEvent =
  | { kind: "directory"; name: string; mode: number }
  | { kind: "symlink"; name: string; target: string }
  | { kind: "file"; name: string; mode: number; size: number }
  /** The next bytes of the current file: a view, valid until the handler returns. */
  | { kind: "data"; bytes: Uint8Array }
  /**
   * The next `length` bytes of the current file, passed over unread: the handler said it
   * does not need them (TarReader.neededFrom, skip).
   */
  | { kind: "gap"; length: number }
  /** The current file's data is complete. */
  | { kind: "file-end" }
  | { kind: "other"; name: string; type: string };

export type TarHandler = (event: TarEvent) => void | Promise<void>;

/** A malformed stream: the caller says which object it was. */
export class TarFormatError extends Error {}

/** pax or GNU long-name data larger than this is refused (names are short). */
const MAX_META_BYTES = 1 << 20;

type State =
  | { at: "header" }
  | {
      at: "meta";
      type: "pax" | "pax-global" | "long-name" | "long-link";
      left: number;
      pad: number;
    }
  | { at: "data"; size: number; left: number; pad: number }
  | { at: "skip"; left: number }
  | { at: "end" };

export class TarReader {
  private state: State = { at: "header" };
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private meta: Buffer[] = [];
  /** From pax records or GNU long names, for the next entry only. */
  private next: { path?: string; linkpath?: string; size?: number } = {};

  /** Bytes of the stream parsed or skipped so far. */
  private offset = 0;

  /**
   * The offset in the stream from which bytes are needed: now (this.offset), or, inside a
   * file's data, where `wantFrom` (the offset in the file of the next byte its handler
   * needs; Infinity: none) says, but never past the next header. After the end of the
   * archive, nothing more is needed.
   */
  neededFrom(wantFrom: () => number): number {
    const state = this.state;
    if (state.at === "end") return Number.POSITIVE_INFINITY;
    if (state.at === "skip") return this.offset + state.left;
    if (state.at !== "data") return this.offset;
    const at = state.size - state.left;
    const want = wantFrom();
    if (want <= at) return this.offset;
    return this.offset + Math.min(want - at, state.left + state.pad);
  }

  /**
   * Passes over the next `length` bytes unread: they must all be before neededFrom (the
   * rest of a file's data the handler does not need, its padding). The handler gets them
   * as a "gap" (and "file-end" if the file's data ends in them).
   */
  async skip(length: number, handle: TarHandler): Promise<void> {
    let rest = length;
    while (rest > 0) {
      const state = this.state;
      if (state.at === "end") break;
      if (state.at === "data") {
        const take = Math.min(state.left, rest);
        if (take > 0) await handle({ kind: "gap", length: take });
        state.left -= take;
        rest -= take;
        this.offset += take;
        if (state.left === 0) {
          await handle({ kind: "file-end" });
          this.state = state.pad > 0 ? { at: "skip", left: state.pad } : { at: "header" };
        }
      } else if (state.at === "skip") {
        const take = Math.min(state.left, rest);
        state.left -= take;
        rest -= take;
        this.offset += take;
        if (state.left === 0) this.state = { at: "header" };
      } else {
        throw new TarFormatError(`${rest} bytes were passed over where an entry's header is`);
      }
    }
  }

  /** Parses `bytes`; resolves once every event in them was handled. */
  async write(bytes: Uint8Array, handle: TarHandler): Promise<void> {
    this.offset += bytes.length;
    let at = 0;
    while (at < bytes.length) {
      const state = this.state;
      if (state.at === "end") return; // what follows the end-of-archive blocks is ignored
      if (state.at === "header") {
        const take = Math.min(BLOCK - this.headerFill, bytes.length - at);
        this.header.set(bytes.subarray(at, at + take), this.headerFill);
        this.headerFill += take;
        at += take;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          await this.onHeader(handle);
        }
      } else if (state.at === "meta") {
        const take = Math.min(state.left, bytes.length - at);
        this.meta.push(Buffer.from(bytes.subarray(at, at + take)));
        state.left -= take;
        at += take;
        if (state.left === 0) {
          this.onMeta(state.type);
          this.state = state.pad > 0 ? { at: "skip", left: state.pad } : { at: "header" };
        }
      } else if (state.at === "data") {
        const take = Math.min(state.left, bytes.length - at);
        if (take > 0) await handle({ kind: "data", bytes: bytes.subarray(at, at + take) });
        state.left -= take;
        at += take;
        if (state.left === 0) {
          await handle({ kind: "file-end" });
          this.state = state.pad > 0 ? { at: "skip", left: state.pad } : { at: "header" };
        }
      } else {
        const take = Math.min(state.left, bytes.length - at);
        state.left -= take;
        at += take;
        if (state.left === 0) this.state = { at: "header" };
      }
    }
  }

  /** Throws when the stream stopped inside an entry. */
  end(): void {
    const state = this.state;
    if (state.at === "end" || (state.at === "header" && this.headerFill === 0)) return;
    throw new TarFormatError("the tar stream ends in the middle of an entry");
  }

  private async onHeader(handle: TarHandler): Promise<void> {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      // The end of the archive (two zero blocks; one is taken as enough).
      this.state = { at: "end" };
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    if (readOctal(h, 148, 8) !== sum) throw new TarFormatError("invalid tar header (checksum)");
    const flag = String.fromCharCode(h[156] as number);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      // The size of metadata is its own, never one a pax record set for the next entry.
      const size = readSize(h);
      if (size > MAX_META_BYTES) throw new TarFormatError("oversized tar metadata entry");
      const type =
        flag === "x"
          ? "pax"
          : flag === "g"
            ? "pax-global"
            : flag === "L"
              ? "long-name"
              : "long-link";
      this.meta = [];
      if (size === 0) this.onMeta(type);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      this.state = size === 0 ? { at: "header" } : { at: "meta", type, left: size, pad };
      return;
    }
    const size = this.next.size ?? readSize(h);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    const name = this.next.path ?? readName(h);
    const linkname = this.next.linkpath ?? readString(h, 157, 100);
    this.next = {};
    const mode = readOctal(h, 100, 8);
    if (flag === "0" || flag === "\0" || flag === "7") {
      await handle({ kind: "file", name, mode, size });
      this.state = { at: "data", size, left: size, pad };
      if (size === 0) {
        await handle({ kind: "file-end" });
        this.state = { at: "header" };
      }
      return;
    }
    if (flag === "5") await handle({ kind: "directory", name, mode });
    else if (flag === "2") await handle({ kind: "symlink", name, target: linkname });
    else await handle({ kind: "other", name, type: flag });
    // Whatever data an entry that is not a file carries is skipped.
    this.state = size + pad > 0 ? { at: "skip", left: size + pad } : { at: "header" };
  }

  private onMeta(type: "pax" | "pax-global" | "long-name" | "long-link"): void {
    const data = Buffer.concat(this.meta);
    this.meta = [];
    if (type === "long-name") this.next.path = cString(data);
    else if (type === "long-link") this.next.linkpath = cString(data);
    else if (type === "pax") {
      const records = parsePax(data);
      if (records.path !== undefined) this.next.path = records.path;
      if (records.linkpath !== undefined) this.next.linkpath = records.linkpath;
      if (records.size !== undefined) {
        const size = Number(records.size);
        if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError("invalid pax size");
        this.next.size = size;
      }
    }
  }
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.subarray(0, nul === -1 ? data.length : nul).toString("utf8");
}

function readString(h: Buffer, offset: number, length: number): string {
  return cString(h.subarray(offset, offset + length));
}

/** ustar joins prefix and name; the GNU format (magic "ustar  ") has no prefix. */
function readName(h: Buffer): string {
  const name = readString(h, 0, 100);
  const ustar = h.toString("latin1", 257, 263) === "ustar\0";
  const prefix = ustar ? readString(h, 345, 155) : "";
  return prefix ? `${prefix}/${name}` : name;
}

function readOctal(h: Buffer, offset: number, length: number): number {
  const text = h
    .toString("latin1", offset, offset + length)
    .replace(/\0.*$/s, "")
    .trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError("invalid tar header (number)");
  return Number.parseInt(text, 8);
}

function readSize(h: Buffer): number {
  if (((h[124] as number) & 0x80) === 0) return readOctal(h, 124, 12);
  let size = 0;
  for (let i = 125; i < 136; i++) size = size * 256 + (h[i] as number);
  if (!Number.isSafeInteger(size)) throw new TarFormatError("invalid tar header (size)");
  return size;
}

/** pax records: "<length> <key>=<value>\n", the length counting the whole record. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number.parseInt(data.toString("latin1", at, space), 10);
    if (!(length > 0) || at + length > data.length) throw new TarFormatError("invalid pax record");
    const record = data.toString("utf8", space + 1, at + length - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}
