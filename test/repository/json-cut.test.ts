import { describe, expect, it } from "vitest";
import { ArrayCutter } from "../../src/repository/json-cut.js";
import { jsonBody } from "../../src/repository/json-object.js";

/** The text cut by `member`, fed in chunks of `size` bytes. */
function cut(text: string | Buffer, member: string, size = 1 << 16) {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const cutter = new ArrayCutter(member);
  for (let at = 0; at < bytes.length; at += size) cutter.write(bytes.subarray(at, at + size));
  const kept = cutter.end();
  return { value: JSON.parse(kept), count: cutter.count };
}

describe("ArrayCutter", () => {
  const doc = {
    id: "a",
    tricky: 'files": [ "x", ] } { \\ "',
    nested: { files: [1, 2, 3] },
    "fi\\les": ["not this one"],
    files: [
      { path: 'a"]},[{', size: 1 },
      { path: "b\\", blocks: { hashes: "[[[" } },
      { path: "c\u00e9\u{1f600}", list: [[], [1, [2]]] },
    ],
    after: ["kept"],
  };

  it("empties the object's own array and counts its elements, whatever its strings hold", () => {
    for (const text of [JSON.stringify(doc), JSON.stringify(doc, null, 1)])
      for (const size of [1, 2, 3, 7, 64, 1 << 16])
        expect(cut(text, "files", size), `chunks of ${size}`).toEqual({
          value: { ...doc, files: [] },
          count: 3,
        });
  });

  it("counts an empty array as 0 and one element as 1", () => {
    expect(cut('{"files": [ ], "x": 1}', "files")).toEqual({
      value: { files: [], x: 1 },
      count: 0,
    });
    expect(cut('{"files":[{}]}', "files")).toEqual({ value: { files: [] }, count: 1 });
    expect(cut('{"files":["]"]}', "files", 1)).toEqual({ value: { files: [] }, count: 1 });
  });

  it("reads pgha's own writer of long documents (jsonBody) as JSON.parse does", () => {
    const files = Array.from({ length: 5000 }, (_, i) => ({
      part: "base",
      path: `base/1/${i}`,
      size: i,
    }));
    const whole = {
      kind: "base-backup",
      objects: [{ key: "k", files: 5000 }],
      files,
      label: "L\n",
    };
    expect(cut(jsonBody(whole), "files", 4096)).toEqual({
      value: { ...whole, files: [] },
      count: 5000,
    });
  });

  it("leaves the text whole where the member is missing, nested only, or not an array", () => {
    for (const text of ['{"a": {"files": []}}', '{"files": 3}', '["files", []]', '{"xfiles": [1]}'])
      expect(cut(text, "files", 2)).toEqual({ value: JSON.parse(text), count: undefined });
  });
});
