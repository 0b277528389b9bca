import { describe, expect, it } from "vitest";
import { JsonStreamParser, parseJsonChunks } from "../../src/repository/json-stream.js";

/** The text in pieces of `size` bytes (cutting UTF-8 sequences and tokens anywhere). */
function chunks(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

/** What JSON.parse says of the whole text: its value, or that it throws. */
function expected(text: string): { value: unknown } | { error: true } {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: true };
  }
}

/** Parsed split as it streams (smallBytes 0), and parsed whole (a small document): both. */
function parsed(text: string, size: number, batch: number): { value: unknown } | { error: true } {
  const outcomes = [0, 1 << 20].map((smallBytes) => {
    try {
      return { value: parseJsonChunks(chunks(text, size), { batchBytes: batch, smallBytes }) };
    } catch (error) {
      expect(error).toBeInstanceOf(SyntaxError);
      return { error: true as const };
    }
  });
  expect(outcomes[0]).toEqual(outcomes[1]);
  return outcomes[0] as { value: unknown } | { error: true };
}

const manifestLike = {
  format: 2,
  kind: "base-backup",
  id: "20261201T231620Z",
  tablespaces: [],
  objects: [{ part: "base", key: "a/b", files: 3 }],
  files: Array.from({ length: 300 }, (_, i) => ({
    part: "base",
    path: `base/5/${9000000 + i}`,
    size: 8192 * (i % 3),
    sha256: "ab".repeat(32),
    note: i % 7 === 0 ? 'quote " backslash \\ bracket ] brace } comma , é ☃ 𝄞' : null,
    blocks: i % 2 ? { size: 8192, hashes: "AAEC", from: "AA==" } : undefined,
    nested: [[1, [2]], { "]": "[" }],
  })),
  backupLabel: "START WAL LOCATION: 0/2000028\n",
  tablespaceMap: null,
};

describe("JsonStreamParser", () => {
  const valid = [
    JSON.stringify(manifestLike, null, 1),
    JSON.stringify(manifestLike),
    "{}",
    ' \n { "a" : [ ] , "b":[1] ,"c":[ {"x":[]} , 2 ] } \n',
    '{"files":[1],"files":[2,3]}',
    '{"a":"[","b":["]",","]}',
    "[1,2,[3]]",
    '"text"',
    "42",
    "null",
    '{"__proto__":[1],"0":[2],"z":{"deep":[[]]}}',
  ];
  const invalid = [
    '{"a":[1,]}',
    '{"a":[,1]}',
    '{"a":[1,,2]}',
    '{"a":[1}}',
    "{[1]:2}",
    '{"a":[1][2]}',
    '{"a":[1]',
    '{"a":[1,2',
    '{"a":"x',
    '{"a":1}{"b":[2]}',
    '{"a":1} [1]',
    "",
    "   ",
    '{"a":[1 2]}',
    "[1,]",
  ];
  it.each(valid)("gives JSON.parse's value for %#, in pieces of any size", (text) => {
    for (const size of [1, 2, 3, 7, 64, 1 << 20])
      for (const batch of [1, 50, 1 << 16])
        expect(parsed(text, size, batch)).toEqual(expected(text));
  });
  it.each(invalid)("rejects %j as JSON.parse does", (text) => {
    expect(expected(text)).toEqual({ error: true });
    for (const size of [1, 3, 1 << 20])
      for (const batch of [1, 1 << 16]) expect(parsed(text, size, batch)).toEqual({ error: true });
  });
  it("keeps no view of a chunk: a chunk's memory may be reused after write", () => {
    const text = JSON.stringify(manifestLike);
    const bytes = Buffer.from(text);
    const parser = new JsonStreamParser({ batchBytes: 100, smallBytes: 50 });
    const scratch = Buffer.alloc(13);
    for (let at = 0; at < bytes.length; at += 13) {
      const n = bytes.copy(scratch, 0, at, at + 13);
      parser.write(scratch.subarray(0, n));
      scratch.fill(0x41);
    }
    expect(parser.end()).toEqual(JSON.parse(text));
  });
});

describe("JsonStreamParser with members to skip", () => {
  it("leaves those arrays empty and gives everything else as JSON.parse does", () => {
    const doc = { ...manifestLike, 'fi"les': [1, 2], other: { files: [3] } };
    const text = JSON.stringify(doc, null, 1);
    const want = { ...JSON.parse(text), files: [] };
    for (const size of [1, 5, 4096])
      for (const batch of [1, 1 << 16])
        for (const smallBytes of [0, 1 << 20])
          expect(
            parseJsonChunks(chunks(text, size), {
              batchBytes: batch,
              skip: new Set(["files"]),
              smallBytes,
            }),
          ).toEqual(want);
    const quoted = { ...JSON.parse(text), 'fi"les': [] };
    expect(parseJsonChunks(chunks(text, 3), { batchBytes: 10, skip: new Set(['fi"les']) })).toEqual(
      quoted,
    );
  });

  it("counts the elements of the arrays it skips, without parsing them", () => {
    const tricky = {
      a: 1,
      files: [{ p: 'x"],[{' }, "\\", [[], [1]], 7, null],
      empty: [],
      one: [{}],
    };
    const skip = new Set(["files", "empty", "one"]);
    for (const text of [JSON.stringify(tricky), JSON.stringify(tricky, null, 1)])
      for (const size of [1, 4, 4096])
        for (const smallBytes of [0, 1 << 20]) {
          const skipped = new Map<string, number>();
          const got = parseJsonChunks(chunks(text, size), { skip, skipped, smallBytes });
          expect(got).toEqual({ a: 1, files: [], empty: [], one: [] });
          expect(Object.fromEntries(skipped)).toEqual({ files: 5, empty: 0, one: 1 });
        }
  });

  it("hands the elements of `each`'s members over in order instead of keeping them", () => {
    const text = JSON.stringify(manifestLike, null, 1);
    for (const [batch, smallBytes] of [
      [1, 0],
      [100, 0],
      [1 << 16, 0],
      [100, 1 << 20],
      [100, 5000],
    ] as const) {
      const files: unknown[] = [];
      const got = parseJsonChunks(chunks(text, 7), {
        batchBytes: batch,
        smallBytes,
        each: new Map([["files", (f: unknown) => files.push(f)]]),
      });
      expect(got).toEqual({ ...JSON.parse(text), files: [] });
      expect(files).toEqual(JSON.parse(text).files);
    }
  });
});
