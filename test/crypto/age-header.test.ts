/** The age header: strict parsing (as the reference implementation), formatting, rewrapping. */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createDecryptStream,
  decryptBytes,
  encryptBytes,
  readHeader,
  rewrapHeader,
} from "../../src/crypto/age.js";
import { formatHeader, parseHeader } from "../../src/crypto/age-header.js";
import { decodeBase64, encodeBase64 } from "../../src/crypto/age-primitives.js";
import { IntegrityError } from "../../src/errors.js";
import { KIB, newKeyPair, randomData, runTransform } from "./age-fixtures.js";

const INTRO = "age-encryption.org/v1\n";
const MAC_LINE = `--- ${encodeBase64(randomBytes(32))}\n`;

function parse(text: string) {
  return parseHeader(Buffer.from(text, "latin1"));
}

describe("age header", () => {
  it("base64 is unpadded and canonical", () => {
    expect(decodeBase64("AAA")?.length).toBe(2);
    expect(decodeBase64("AAA=")).toBeNull(); // padding
    expect(decodeBase64("AAB")).toBeNull(); // non-zero unused bits
    expect(decodeBase64("A")).toBeNull();
    expect(decodeBase64("AA\r")).toBeNull();
    expect(decodeBase64("A-_A")).toBeNull(); // URL alphabet
    expect(encodeBase64(Buffer.from([0xff, 0xfe]))).toBe("//4");
  });

  it("wraps stanza bodies at 64 columns; the last line is shorter, empty after a full one", () => {
    const fileKey = randomBytes(16);
    for (const [bodyBytes, lines] of [
      [0, [0]],
      [32, [43]],
      [48, [64, 0]],
      [100, [64, 64, 6]],
    ] as const) {
      const header = formatHeader(
        [{ type: "test", args: ["a", "b"], body: randomBytes(bodyBytes) }],
        fileKey,
      ).toString("latin1");
      const bodyLines = header.split("\n").slice(2, -2);
      expect(bodyLines.map((l) => l.length)).toEqual(lines);
      const parsed = parse(header);
      if (parsed === "incomplete") throw new Error("incomplete");
      expect(parsed.stanzas[0]?.body.length).toBe(bodyBytes);
      expect(parsed.headerBytes).toBe(header.length);
    }
  });

  it("says incomplete until the MAC line's newline, at every cut", () => {
    const file = encryptBytes(Buffer.from("x"), [newKeyPair().recipient]);
    const info = readHeader(file);
    if (info === "incomplete") throw new Error("incomplete");
    for (let cut = 0; cut < info.headerBytes; cut++) {
      expect(readHeader(file.subarray(0, cut)), `cut ${cut}`).toBe("incomplete");
    }
    expect(readHeader(file.subarray(0, info.headerBytes))).toEqual(info);
  });

  it("refuses malformed headers as failed authentication", () => {
    const body = encodeBase64(randomBytes(32));
    const good = `${INTRO}-> X25519 ${encodeBase64(randomBytes(32))}\n${body}\n${MAC_LINE}`;
    expect(parse(good)).not.toBe("incomplete");
    const bad: Record<string, string> = {
      "not age": "hello world\n",
      "other version": "age-encryption.org/v2\n",
      crlf: good.replaceAll("\n", "\r\n"),
      "padding in body": `${INTRO}-> t a\nAAA=\n${MAC_LINE}`,
      "non-canonical body": `${INTRO}-> t a\nAAB\n${MAC_LINE}`,
      "line over 64 columns": `${INTRO}-> t a\n${"A".repeat(68)}\n${MAC_LINE}`,
      "short line then more": `${INTRO}-> t a\nAAAA\nAAAA\n${MAC_LINE}`,
      "missing final line": `${INTRO}-> t a\n${"A".repeat(64)}\n${MAC_LINE}`,
      "missing body": `${INTRO}-> t a\n${MAC_LINE}`,
      "empty argument": `${INTRO}-> t  a\n\n${MAC_LINE}`,
      "no type": `${INTRO}->\n\n${MAC_LINE}`,
      "bad start": `${INTRO}=> t a\n\n${MAC_LINE}`,
      "non-ASCII argument": `${INTRO}-> t \u00e9\n\n${MAC_LINE}`,
      "MAC without space": `${INTRO}-> t a\n\n---${MAC_LINE.slice(4)}`,
      "MAC trailing space": `${INTRO}-> t a\n\n${MAC_LINE.slice(0, -1)} \n`,
      "MAC short": `${INTRO}-> t a\n\n--- ${encodeBase64(randomBytes(31))}\n`,
    };
    for (const [name, text] of Object.entries(bad)) {
      expect(() => parse(text), name).toThrow(IntegrityError);
      expect(() => parse(text), name).toThrow(/failed authentication/);
    }
  });

  it("refuses a header that does not end within 1 MiB (bounded memory on garbage)", async () => {
    const manyLines = Buffer.from(`${INTRO}${"-> grease a\nAAAA\n".repeat(70_000)}`, "latin1");
    const oneLongLine = Buffer.from(`${INTRO}-> grease ${"a".repeat(1_100_000)}`, "latin1");
    for (const junk of [manyLines, oneLongLine]) {
      expect(junk.length).toBeGreaterThan(1 << 20);
      expect(() => readHeader(junk)).toThrow(/failed authentication: header too long/);
      await expect(
        runTransform(createDecryptStream([newKeyPair().identity]), junk, [4096]),
      ).rejects.toThrow(/header too long/);
    }
    expect(readHeader(manyLines.subarray(0, 1 << 20))).toBe("incomplete");
  });

  it("keeps unknown stanzas (grease) and their arguments", () => {
    const parsed = parse(`${INTRO}-> x-grease ab+/ c\nAAAA\n${MAC_LINE}`);
    if (parsed === "incomplete") throw new Error("incomplete");
    expect(parsed.stanzas).toEqual([
      { type: "x-grease", args: ["ab+/", "c"], body: Buffer.from([0, 0, 0]) },
    ]);
  });

  it("refuses an scrypt stanza beside another stanza", () => {
    const pair = newKeyPair();
    const file = encryptBytes(Buffer.from("x"), [pair.recipient]);
    const text = file.toString("latin1");
    const withScrypt = text.replace(
      "\n---",
      `\n-> scrypt ${encodeBase64(randomBytes(16))} 10\n${encodeBase64(randomBytes(32))}\n---`,
    );
    expect(() => decryptBytes(Buffer.from(withScrypt, "latin1"), [pair.identity])).toThrow(
      /scrypt stanza is not the only stanza/,
    );
  });

  it("refuses an scrypt work factor above maxLogN before doing the work", () => {
    const file = encryptBytes(Buffer.from("x"), [{ type: "scrypt", passphrase: "pw", logN: 12 }]);
    expect(() => decryptBytes(file, [{ type: "scrypt", passphrase: "pw", maxLogN: 11 }])).toThrow(
      /work factor 2\^12 is above the limit 2\^11/,
    );
  });

  it("rewrapHeader gives the same payload to new recipients; old keys no longer open it", () => {
    const oldPair = newKeyPair();
    const newPairs = [newKeyPair(), newKeyPair()];
    const plain = randomData(200 * KIB);
    const file = encryptBytes(plain, [oldPair.recipient]);
    const { oldHeaderBytes, header } = rewrapHeader(
      file.subarray(0, 4096),
      [oldPair.identity],
      newPairs.map((p) => p.recipient),
    );
    const info = readHeader(file);
    if (info === "incomplete") throw new Error("incomplete");
    expect(oldHeaderBytes).toBe(info.headerBytes);
    const rewrapped = Buffer.concat([header, file.subarray(oldHeaderBytes)]);
    expect(rewrapped.subarray(header.length).equals(file.subarray(oldHeaderBytes))).toBe(true);
    for (const p of newPairs)
      expect(decryptBytes(rewrapped, [p.identity]).equals(plain)).toBe(true);
    expect(() => decryptBytes(rewrapped, [oldPair.identity])).toThrow(/no identity matches/);
    // Rewrapping needs an identity the old header opens, and a complete, authentic header.
    expect(() => rewrapHeader(file, [newPairs[0]?.identity as never], [oldPair.recipient])).toThrow(
      /no identity matches/,
    );
    expect(() =>
      rewrapHeader(file.subarray(0, 50), [oldPair.identity], [oldPair.recipient]),
    ).toThrow(/header is truncated/);
    // To a passphrase and back.
    const toPass = rewrapHeader(
      file,
      [oldPair.identity],
      [{ type: "scrypt", passphrase: "p", logN: 9 }],
    );
    const passFile = Buffer.concat([toPass.header, file.subarray(toPass.oldHeaderBytes)]);
    expect(decryptBytes(passFile, [{ type: "scrypt", passphrase: "p" }]).equals(plain)).toBe(true);
  });
});
