/** age keys: Bech32, key pairs, recipient and identity-file parsing with usage errors. */
import { describe, expect, it } from "vitest";
import {
  encryptBytes,
  generateX25519Identity,
  parseIdentityFile,
  parseRecipient,
  publicKeyOf,
} from "../../src/crypto/age.js";
import { decodeBech32, encodeBech32 } from "../../src/crypto/bech32.js";
import { encodeX25519PublicKey } from "../../src/crypto/x25519-recipient.js";
import { EXIT_CODES, exitCodeOf, UsageError } from "../../src/errors.js";

describe("bech32", () => {
  it("decodes BIP 173's valid test strings and refuses its invalid ones", () => {
    expect(decodeBech32("A12UEL5L")).toEqual({ hrp: "A", data: Buffer.alloc(0) });
    expect(decodeBech32("a12uel5l")).toEqual({ hrp: "a", data: Buffer.alloc(0) });
    expect(decodeBech32("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")?.hrp).toBe("abcdef");
    expect(decodeBech32("split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w")?.hrp).toBe(
      "split",
    );
    for (const bad of [
      "pzry9x0s0muk",
      "1pzry9x0s0muk",
      "x1b4n0q5v",
      "li1dgmt3",
      "A1G7SGD8",
      "a12UEL5L",
    ]) {
      expect(decodeBech32(bad), bad).toBeNull();
    }
  });

  it("round-trips data of any length, in either case", () => {
    for (const length of [0, 1, 31, 32, 33, 100]) {
      const data = Buffer.from(Array.from({ length }, (_, i) => (i * 37) & 0xff));
      expect(decodeBech32(encodeBech32("age", data))).toEqual({ hrp: "age", data });
      expect(decodeBech32(encodeBech32("AGE-SECRET-KEY-", data, true))).toEqual({
        hrp: "AGE-SECRET-KEY-",
        data,
      });
    }
  });
});

describe("age keys", () => {
  it("generates key pairs in age-keygen's form", () => {
    const { secretKey, publicKey } = generateX25519Identity();
    expect(secretKey).toMatch(/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
    expect(publicKey).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(publicKeyOf(secretKey)).toBe(publicKey);
    expect(parseRecipient(` ${publicKey}\n`)).toEqual({ type: "x25519", publicKey });
  });

  it("refuses what is not a public key, with a hint", () => {
    const { secretKey, publicKey } = generateX25519Identity();
    const cases: [string, RegExp][] = [
      [secretKey, /secret key was given/],
      [publicKey.toUpperCase(), /malformed age public key/],
      [`${publicKey.slice(0, -1)}${publicKey.endsWith("q") ? "p" : "q"}`, /malformed/],
      ["ssh-ed25519 AAAAC3Nza", /SSH keys are not supported/],
      ["garbage", /not an age public key/],
      ["", /not an age public key/],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parseRecipient(text);
      } catch (e) {
        error = e;
      }
      expect(error, text).toBeInstanceOf(UsageError);
      expect(exitCodeOf(error)).toBe(EXIT_CODES.usage);
      expect((error as UsageError).message).toMatch(message);
      expect((error as UsageError).hint).toBeTruthy();
      expect((error as UsageError).message).not.toContain(secretKey);
    }
  });

  it("reads age-keygen identity files: comments, blank lines, CRLF, several keys", () => {
    const a = generateX25519Identity();
    const b = generateX25519Identity();
    const text = `# created: 2026-12-01T20:00:00Z\r\n# public key: ${a.publicKey}\r\n${a.secretKey}\r\n\n  ${b.secretKey}  \n`;
    expect(parseIdentityFile(text)).toEqual([
      { type: "x25519", secretKey: a.secretKey },
      { type: "x25519", secretKey: b.secretKey },
    ]);
  });

  it("refuses identity files without a key or with another line, never echoing it", () => {
    const a = generateX25519Identity();
    expect(() => parseIdentityFile("# nothing\n\n")).toThrow(/holds no age secret key/);
    const broken = `# c\n${a.secretKey.slice(0, -1)}\n`;
    expect(() => parseIdentityFile(broken)).toThrow(/line 2 is not an age secret key/);
    try {
      parseIdentityFile(broken);
    } catch (error) {
      expect((error as Error).message).not.toContain(a.secretKey.slice(0, -1));
      expect(exitCodeOf(error)).toBe(EXIT_CODES.usage);
    }
    expect(() => parseIdentityFile(`${a.publicKey}\n`)).toThrow(UsageError);
    expect(() => publicKeyOf("AGE-SECRET-KEY-1QQQ")).toThrow(UsageError);
  });
});

describe("age keys on the curve", () => {
  it("refuses to encrypt to a low-order public key (all-zero shared secret) as a usage error", () => {
    for (const point of [Buffer.alloc(32), Buffer.from([1, ...Array(31).fill(0)])]) {
      const publicKey = encodeX25519PublicKey(point);
      expect(() => encryptBytes(Buffer.from("x"), [{ type: "x25519", publicKey }])).toThrow(
        /not usable \(a low-order point\)/,
      );
    }
  });
});
