/**
 * Picks, out of a stream of ASCII text arriving in pieces, the lines that contain one of
 * a few fixed strings. Pure. pg_waldump prints tens of thousands of lines per segment and
 * restore find needs a few of them: the search runs over each piece as a whole with
 * Buffer.indexOf (native), so a line that contains no needle is never turned into a
 * string nor looked at one by one in JavaScript.
 */
export class NeedleLines {
  private readonly needles: Buffer[];
  /** The unfinished last line of the pieces so far. */
  private rest: Buffer = Buffer.alloc(0);

  constructor(needles: readonly string[]) {
    // A needle never spans a line: one with a newline could not match a line.
    this.needles = needles
      .filter((n) => n !== "" && !n.includes("\n"))
      .map((n) => Buffer.from(n, "latin1"));
  }

  /** The lines completed by this piece that contain a needle, in order, each once. */
  push(piece: Buffer): string[] {
    const text = this.rest.length === 0 ? piece : Buffer.concat([this.rest, piece]);
    const end = text.lastIndexOf(10);
    if (end < 0) {
      this.rest = text;
      return [];
    }
    this.rest = Buffer.from(text.subarray(end + 1));
    return pick(text, end, this.needles);
  }

  /** The last line when the text does not end in a newline, if it contains a needle. */
  end(): string[] {
    const text = this.rest;
    this.rest = Buffer.alloc(0);
    if (text.length === 0) return [];
    const withNewline = Buffer.concat([text, Buffer.from("\n")]);
    return pick(withNewline, text.length, this.needles);
  }
}

/** Lines of text[0, end] (end: the index of a newline) containing a needle. */
function pick(text: Buffer, end: number, needles: Buffer[]): string[] {
  const starts: number[] = [];
  for (const needle of needles) {
    for (let at = text.indexOf(needle); at >= 0 && at < end; ) {
      const lineStart = at === 0 ? 0 : text.lastIndexOf(10, at - 1) + 1;
      starts.push(lineStart);
      const lineEnd = text.indexOf(10, at);
      // The next match of this needle is on a later line.
      at = text.indexOf(needle, lineEnd + 1);
    }
  }
  if (starts.length === 0) return [];
  starts.sort((a, b) => a - b);
  const lines: string[] = [];
  let previous = -1;
  for (const start of starts) {
    if (start === previous) continue;
    previous = start;
    lines.push(text.toString("latin1", start, text.indexOf(10, start)));
  }
  return lines;
}
