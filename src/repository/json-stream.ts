/**
 * JsonStreamParser: JSON.parse of a document that arrives in chunks, without ever holding
 * its whole text. A manifest of 100,000 files is 30 MB of text: read into one string it
 * cost its text, the flattened copy JSON.parse makes of it, and its objects at once (about
 * 95 MB, over the 32 MB of objects kept), which set a restore's peak RSS.
 *
 * The long arrays of a top-level object (a manifest's `files`) are parsed in batches of
 * whole elements as their bytes arrive; the rest of the document (its "skeleton", with
 * each such array replaced by a placeholder string) is parsed at the end and the arrays
 * put back in. Every byte still goes through JSON.parse (a batch is parsed as "[" + its
 * elements + "]"), so the result, and whether the text is valid at all, are those of
 * JSON.parse on the whole text. A document whose top level is not an object is parsed
 * whole.
 *
 * Bytes are scanned, not characters: the structural characters and the quote and
 * backslash are ASCII, and no byte of a multi-byte UTF-8 sequence is below 0x80, so
 * element boundaries are found on bytes; the text of a batch is decoded once it is whole.
 */
import { randomBytes } from "node:crypto";

/** A batch of array elements is parsed once it has at least this many bytes. */
const BATCH_BYTES = 64 << 10;
/**
 * A document this small is parsed whole at its end (its text costs little, and scanning
 * bytes in JavaScript costs more than JSON.parse of them: most manifests are this small).
 */
const SMALL_BYTES = 4 << 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Bytes kept as views of the chunks they came in, joined and decoded when needed. */
class Pieces {
  private list: Buffer[] = [];
  length = 0;

  /** A copy is kept: the caller may reuse its chunk's memory once write() returned. */
  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.list.push(Buffer.from(bytes));
    this.length += bytes.length;
  }

  /** The text so far; the pieces are emptied. */
  take(): string {
    return this.takeBytes().toString("utf8");
  }

  /** The bytes so far; the pieces are emptied. */
  takeBytes(): Buffer {
    const bytes =
      this.list.length === 1 ? (this.list[0] as Buffer) : Buffer.concat(this.list, this.length);
    this.list = [];
    this.length = 0;
    return bytes;
  }
}

export interface JsonStreamOptions {
  /** A batch of array elements is parsed once it has at least this many bytes. */
  batchBytes?: number | undefined;
  /** A document shorter than this is parsed whole at its end (tests set 0: always split). */
  smallBytes?: number | undefined;
  /**
   * Top-level members whose arrays are left empty, their elements read past unparsed (and
   * so not checked: a caller that wants them reads the document again).
   */
  skip?: ReadonlySet<string> | undefined;
  /** Filled with how many elements each skipped array had (the elements are not parsed). */
  skipped?: Map<string, number> | undefined;
  /**
   * Top-level members whose arrays are left empty, each element handed to the function as
   * it is parsed instead (in order; memory then holds a batch of them, not the array). A
   * caller reading a stored document gets them before its checksum is checked: it must
   * not act on them before the read returned.
   */
  each?: ReadonlyMap<string, (element: unknown) => void> | undefined;
}

export class JsonStreamParser {
  /** Not yet known (only whitespace so far), split (top level is an object), or whole. */
  private mode: "start" | "split" | "whole" = "start";
  /** The text outside the split arrays (or all of it, in whole mode). */
  private readonly skeleton = new Pieces();
  /** Elements of the array being read, not yet parsed. */
  private readonly batch = new Pieces();
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Inside a top-level object's array (depth 2 is its elements' level). */
  private inArray = false;
  /** The last batch of the current array ended at a comma: another element must follow. */
  private afterComma = false;
  private readonly arrays: unknown[][] = [];
  /** The last byte outside strings and split arrays that is not whitespace. */
  private last = 0;
  private readonly token = `\u0000pgha-array-${randomBytes(8).toString("hex")}-`;
  /** The key of the top-level member being read (its JSON text), while skipping is asked. */
  private key = new Pieces();
  private keyText = "";
  private keyFrom = -1;
  /** The current array is one of `skip`'s: its elements are read past, not parsed. */
  private skipping = false;
  /** The skipped array's key, its commas at its own level, and whether it has an element. */
  private skippedKey = "";
  private skippedCommas = 0;
  private skippedAny = false;
  private readonly skipped: Map<string, number> | undefined;
  /** The current array is one of `each`'s: its elements go to this function. */
  private handing: ((element: unknown) => void) | undefined;
  private readonly batchBytes: number;
  private readonly skip: ReadonlySet<string>;
  private readonly each: ReadonlyMap<string, (element: unknown) => void>;
  /** Whether member keys are looked at. */
  private readonly keyed: boolean;

  private readonly smallBytes: number;

  constructor(options: JsonStreamOptions = {}) {
    this.batchBytes = options.batchBytes ?? BATCH_BYTES;
    this.smallBytes = options.smallBytes ?? SMALL_BYTES;
    this.skip = options.skip ?? new Set();
    this.skipped = options.skipped;
    this.each = options.each ?? new Map();
    this.keyed = this.skip.size > 0 || this.each.size > 0;
  }

  /** The bytes of a document not yet known to be large (see SMALL_BYTES). */
  private small: Pieces | undefined = new Pieces();

  write(chunk: Uint8Array): void {
    const small = this.small;
    if (small) {
      small.add(chunk);
      if (small.length < this.smallBytes) return;
      // Large after all: scanned from its start.
      this.small = undefined;
      this.scan(small.takeBytes());
      return;
    }
    this.scan(chunk);
  }

  private scan(chunk: Uint8Array): void {
    let from = 0;
    // Most bytes are inside strings: jump to the next quote or backslash (found with
    // indexOf, natively) instead of looking at each byte in JavaScript.
    let nextBackslash = -1;
    for (let i = 0; i < chunk.length; i++) {
      if (this.inString && !this.escaped) {
        if (nextBackslash < i) {
          nextBackslash = chunk.indexOf(BACKSLASH, i);
          if (nextBackslash === -1) nextBackslash = chunk.length;
        }
        const quote = chunk.indexOf(QUOTE, i);
        const stop = Math.min(quote === -1 ? chunk.length : quote, nextBackslash);
        if (stop >= chunk.length) break;
        i = stop;
      }
      const byte = chunk[i] as number;
      if (this.mode === "start") {
        if (isSpace(byte)) continue;
        this.mode = byte === OPEN_BRACE ? "split" : "whole";
      }
      if (this.mode === "whole") break;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) {
          this.inString = false;
          if (this.keyFrom >= 0) {
            this.key.add(chunk.subarray(this.keyFrom, i + 1));
            this.keyText = this.key.take();
            this.keyFrom = -1;
          }
        }
        continue;
      }
      const significant = !this.inArray && !isSpace(byte);
      // An element of a skipped array: anything but whitespace before its closing bracket.
      if (this.skipping && this.inArray && !isSpace(byte))
        if (!(byte === CLOSE_BRACKET && this.depth === 2)) this.skippedAny = true;
      if (byte === QUOTE) {
        this.inString = true;
        const isKey =
          this.depth === 1 && !this.inArray && (this.last === OPEN_BRACE || this.last === COMMA);
        if (isKey && this.keyed) this.keyFrom = i;
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        this.depth++;
        if (this.depth === 2 && byte === OPEN_BRACKET) {
          // A top-level member's array: its elements go into batches from here. Only as a
          // member's value ("{[1]:2}" must stay an error).
          if (this.last !== COLON) throw new SyntaxError("Unexpected token '[' in JSON");
          this.skeleton.add(chunk.subarray(from, i));
          this.skeleton.add(Buffer.from(JSON.stringify(`${this.token}${this.arrays.length}`)));
          this.arrays.push([]);
          this.inArray = true;
          const key = this.keyed ? this.memberKey() : "";
          this.skipping = this.skip.has(key);
          this.skippedKey = key;
          this.skippedCommas = 0;
          this.skippedAny = false;
          this.handing = this.each.get(key);
          this.afterComma = false;
          from = i + 1;
        }
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (this.inArray && this.depth === 2) {
          if (byte !== CLOSE_BRACKET) throw new SyntaxError("Unexpected token '}' in JSON");
          if (!this.skipping) {
            this.batch.add(chunk.subarray(from, i));
            this.parseBatch(true);
          } else this.skipped?.set(this.skippedKey, this.skippedAny ? this.skippedCommas + 1 : 0);
          this.inArray = false;
          this.last = CLOSE_BRACKET;
          from = i + 1;
        }
        this.depth--;
      } else if (byte === COMMA && this.inArray && this.depth === 2) {
        // A batch ends at a comma once it is large enough (the comma is not in it).
        if (this.skipping) {
          from = i + 1;
          this.skippedCommas++;
        } else if (this.batch.length + i - from >= this.batchBytes) {
          this.batch.add(chunk.subarray(from, i));
          this.parseBatch(false);
          from = i + 1;
        }
      }
      if (significant) this.last = byte;
    }
    if (this.mode === "whole") this.skeleton.add(chunk);
    else if (this.mode === "split") {
      if (!this.inArray) this.skeleton.add(chunk.subarray(from));
      else if (!this.skipping) this.batch.add(chunk.subarray(from));
    }
    if (this.keyFrom >= 0) {
      this.key.add(chunk.subarray(this.keyFrom));
      this.keyFrom = 0;
    }
  }

  /** A small document, parsed whole, its `skip` and `each` arrays treated as when split. */
  private wholeSmall(text: string): unknown {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
    const top = value as Record<string, unknown>;
    for (const key of Object.keys(top)) {
      const member = top[key];
      if (!Array.isArray(member)) continue;
      const handing = this.each.get(key);
      if (handing) for (const element of member) handing(element);
      if (this.skip.has(key)) this.skipped?.set(key, member.length);
      if (handing || this.skip.has(key)) top[key] = [];
    }
    return top;
  }

  /** The key of the member whose value starts here. */
  private memberKey(): string {
    try {
      return JSON.parse(this.keyText) as string;
    } catch {
      return "";
    }
  }

  /** Parses the elements gathered; `last`: the array ends here. */
  private parseBatch(last: boolean): void {
    const text = this.batch.take();
    const empty = text.trim() === "";
    // "[1," then "]": an element must follow a comma ("[]" of an empty batch would not say so).
    if (last && empty && this.afterComma) JSON.parse("[1,]");
    this.afterComma = !last;
    if (last && empty) return;
    const elements = JSON.parse(`[${text}]`) as unknown[];
    const handing = this.handing;
    if (handing) {
      for (const element of elements) handing(element);
      return;
    }
    const into = this.arrays.at(-1) as unknown[];
    for (const element of elements) into.push(element);
  }

  /** The document's value; throws JSON.parse's SyntaxError for a text that is not JSON. */
  end(): unknown {
    if (this.small) return this.wholeSmall(this.small.take());
    if (this.mode !== "split") return JSON.parse(this.skeleton.take());
    // Unbalanced: the skeleton's parse must fail as the whole text's would.
    if (this.inArray) JSON.parse(`${this.skeleton.take()}[`);
    const top = JSON.parse(this.skeleton.take()) as Record<string, unknown>;
    for (const key of Object.keys(top)) {
      const value = top[key];
      if (typeof value !== "string" || !value.startsWith(this.token)) continue;
      const array = this.arrays[Number(value.slice(this.token.length))];
      if (!array) throw new SyntaxError(`unexpected placeholder in ${key}`);
      // (A duplicate key keeps its last array only, as JSON.parse does.)
      top[key] = array;
    }
    return top;
  }
}

/** JSON.parse of `chunks` (tests, and anything that has the bytes in pieces). */
export function parseJsonChunks(
  chunks: Iterable<Uint8Array>,
  options?: JsonStreamOptions,
): unknown {
  const parser = new JsonStreamParser(options);
  for (const chunk of chunks) parser.write(chunk);
  return parser.end();
}
