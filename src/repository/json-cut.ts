/**
 * ArrayCutter: pure. Reads a JSON object's bytes as they arrive and keeps all of it but
 * one of its own (depth 1) array members, which it replaces by `[]` while counting its
 * elements. For readers that need a manifest's header but not its file list: a backup of
 * 100,000 files has a 30 MB list whose parsed objects cost several times its text, and
 * `backup list`, `verify`, `prune` and the restore planner read every manifest of the
 * repository. The list is never held, as bytes, text or objects.
 *
 * The scan follows JSON's grammar only as far as it must (strings and their escapes,
 * nesting depth), on bytes: in UTF-8 a quote or backslash byte is always that character.
 * The document's checksum is verified by the caller over every byte, and what is kept
 * still goes to JSON.parse, which rejects what is not JSON. When the member is missing,
 * nested only, or not an array, the text comes back whole and `count` is undefined.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** `"name"` and a colon, at the end of what precedes an array (JSON's own spacing). */
const MEMBER_NAME = /"((?:[^"\\]|\\.)*)"[ \t\r\n]*:[ \t\r\n]*$/;

export class ArrayCutter {
  /** Elements of the cut array, once it closed. */
  count: number | undefined;
  private readonly kept: Buffer[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Inside the cut array: its depth (1 = its own level), commas there, whether empty. */
  private cutDepth = 0;
  private commas = 0;
  private empty = true;

  constructor(private readonly member: string) {}

  write(chunk: Buffer): void {
    let keepFrom = 0;
    const n = chunk.length;
    // The chunk's next backslash at or after i (n when none): looked up again only once
    // passed, so a chunk without one is searched once, not once per string.
    let slash = -1;
    for (let i = 0; i < n; i++) {
      const c = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        else {
          // Straight to the string's next quote or backslash.
          if (slash < i) {
            slash = chunk.indexOf(BACKSLASH, i);
            if (slash < 0) slash = n;
          }
          const quote = chunk.indexOf(QUOTE, i);
          i = Math.min(quote < 0 ? n : quote, slash) - 1;
        }
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
        if (this.cutDepth > 0) this.empty = false;
        continue;
      }
      if (this.cutDepth > 0) {
        if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
          this.cutDepth++;
          this.empty = false;
        } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
          this.cutDepth--;
          if (this.cutDepth === 0) {
            this.count = this.empty ? 0 : this.commas + 1;
            keepFrom = i; // the closing bracket
          }
        } else if (this.cutDepth === 1) {
          if (c === COMMA) this.commas++;
          else if (!isSpace(c)) this.empty = false;
        }
        continue;
      }
      if (c === OPEN_OBJECT) this.depth++;
      else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) this.depth--;
      else if (c === OPEN_ARRAY) {
        if (this.depth === 1 && this.count === undefined && this.named(chunk, keepFrom, i)) {
          this.kept.push(chunk.subarray(keepFrom, i + 1));
          this.cutDepth = 1;
          continue;
        }
        this.depth++;
      }
    }
    if (this.cutDepth === 0) this.kept.push(chunk.subarray(keepFrom));
  }

  /** The text kept: the document with the member's array empty (or whole). */
  end(): string {
    const text = Buffer.concat(this.kept).toString("utf8");
    this.kept.length = 0;
    return text;
  }

  /** Whether the array opening at chunk[at] is the value of the member this cuts. */
  private named(chunk: Buffer, from: number, at: number): boolean {
    // What precedes it: enough of the kept bytes for the name, its quotes and spacing.
    const want = Buffer.byteLength(JSON.stringify(this.member)) * 6 + 64;
    const pieces = [chunk.subarray(Math.max(from, at - want), at)];
    let have = pieces[0]?.length ?? 0;
    for (let k = this.kept.length - 1; k >= 0 && have < want && at - from < want; k--) {
      const piece = this.kept[k] as Buffer;
      pieces.unshift(piece.subarray(Math.max(0, piece.length - (want - have))));
      have += pieces[0]?.length ?? 0;
    }
    const name = MEMBER_NAME.exec(Buffer.concat(pieces).toString("utf8"))?.[1];
    if (name === undefined) return false;
    try {
      return JSON.parse(`"${name}"`) === this.member;
    } catch {
      return false;
    }
  }
}
