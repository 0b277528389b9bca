/** Round trips through the age codec: one-shot and streamed, every size edge of STREAM. */
import { describe, expect, it } from "vitest";
import {
  createDecryptStream,
  createEncryptStream,
  decryptBytes,
  encryptBytes,
  isAgeFile,
  readHeader,
} from "../../src/crypto/age.js";
import { UsageError } from "../../src/errors.js";
import { KIB, MIB, newKeyPair, randomData, runTransform } from "./age-fixtures.js";

const SIZES = [0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 128 * KIB, 3 * MIB + 17];

/** Payload bytes after header and nonce for a plaintext length (tags per 64 KiB chunk). */
function expectedSealed(length: number): number {
  return length + 16 * Math.max(1, Math.ceil(length / (64 * KIB)));
}

describe("age round trips", () => {
  const { recipient, identity } = newKeyPair();

  for (const size of SIZES) {
    it(`one-shot: ${size} bytes`, () => {
      const plain = randomData(size);
      const sealed = encryptBytes(plain, [recipient]);
      expect(isAgeFile(sealed)).toBe(true);
      const header = readHeader(sealed);
      if (header === "incomplete") throw new Error("incomplete header");
      expect(header.stanzas.map((s) => s.type)).toEqual(["X25519"]);
      expect(sealed.length - header.headerBytes - 16).toBe(expectedSealed(size));
      expect(decryptBytes(sealed, [identity]).equals(plain)).toBe(true);
    });

    it(`streamed in odd writes, both directions mixed with one-shot: ${size} bytes`, async () => {
      const plain = randomData(size);
      const streamed = await runTransform(
        createEncryptStream([recipient]),
        plain,
        [1, 7, 65_537, 3],
      );
      expect(decryptBytes(streamed, [identity]).equals(plain)).toBe(true);
      const oneShot = encryptBytes(plain, [recipient]);
      const back = await runTransform(
        createDecryptStream([identity]),
        oneShot,
        [5, 65_553, 1, 70_000],
      );
      expect(back.equals(plain)).toBe(true);
    });
  }

  it("decrypts a stream written a byte at a time, or split at the header's and nonce's ends", async () => {
    const plain = randomData(70 * KIB);
    const sealed = encryptBytes(plain, [recipient]);
    const header = readHeader(sealed);
    if (header === "incomplete") throw new Error("incomplete header");
    const small = encryptBytes(plain.subarray(0, 100), [recipient]);
    const oneByOne = await runTransform(createDecryptStream([identity]), small, [1]);
    expect(oneByOne.equals(plain.subarray(0, 100))).toBe(true);
    for (const first of [header.headerBytes, header.headerBytes + 16, header.headerBytes + 3]) {
      const back = await runTransform(createDecryptStream([identity]), sealed, [first, 65_552]);
      expect(back.equals(plain), `first write ${first}`).toBe(true);
    }
  });

  it("does not keep the writer's buffers: overwriting them after each write changes nothing", async () => {
    const plain = randomData(3 * 64 * KIB + 5);
    const sealed = encryptBytes(plain, [recipient]);
    for (const [make, input, expected] of [
      [() => createDecryptStream([identity]), sealed, plain],
      [() => createEncryptStream([recipient]), plain, null],
    ] as const) {
      const transform = make();
      const out: Buffer[] = [];
      transform.on("data", (c: Buffer) => out.push(Buffer.from(c)));
      const ended = new Promise((resolve, reject) => {
        transform.on("end", resolve);
        transform.on("error", reject);
      });
      const scratch = Buffer.alloc(10_000);
      // Small first writes: the header and the nonce arrive in pieces that must be held.
      const sizes = [50, 120, 10_000];
      for (let pos = 0, i = 0; pos < input.length; i++) {
        const n = input.copy(scratch, 0, pos, pos + (sizes[Math.min(i, 2)] as number));
        pos += n;
        await new Promise<void>((resolve) =>
          transform.write(scratch.subarray(0, n), () => resolve()),
        );
        scratch.fill(0xaa);
      }
      transform.end();
      await ended;
      const result = Buffer.concat(out);
      expect((expected ?? plain).equals(expected ? result : decryptBytes(result, [identity]))).toBe(
        true,
      );
    }
  });

  it("streams several MiB in one write each way", async () => {
    const plain = randomData(5 * MIB + 3);
    const sealed = await runTransform(createEncryptStream([recipient]), plain);
    expect(sealed.length).toBe(encryptBytes(plain, [recipient]).length);
    const back = await runTransform(createDecryptStream([identity]), sealed);
    expect(back.equals(plain)).toBe(true);
  });

  it("every one of several recipients decrypts, and a stranger does not", () => {
    const pairs = [newKeyPair(), newKeyPair(), newKeyPair()];
    const plain = randomData(100 * KIB);
    const sealed = encryptBytes(
      plain,
      pairs.map((p) => p.recipient),
    );
    for (const p of pairs) expect(decryptBytes(sealed, [p.identity]).equals(plain)).toBe(true);
    // Identity lists: a stranger first, the right key last.
    const stranger = newKeyPair().identity;
    expect(decryptBytes(sealed, [stranger, pairs[2]?.identity as never]).equals(plain)).toBe(true);
    expect(() => decryptBytes(sealed, [stranger])).toThrow(/no identity matches/);
  });

  it("encrypting the same plaintext twice gives different files (fresh file key and nonce)", () => {
    const plain = randomData(10);
    expect(encryptBytes(plain, [recipient]).equals(encryptBytes(plain, [recipient]))).toBe(false);
  });

  it("a passphrase round-trips, and the wrong one does not match", async () => {
    const plain = randomData(70 * KIB);
    const sealed = encryptBytes(plain, [{ type: "scrypt", passphrase: "correct horse", logN: 10 }]);
    const header = readHeader(sealed);
    if (header === "incomplete") throw new Error("incomplete header");
    expect(header.stanzas).toEqual([{ type: "scrypt", args: [expect.any(String), "10"] }]);
    const good = { type: "scrypt", passphrase: "correct horse" } as const;
    expect(decryptBytes(sealed, [good]).equals(plain)).toBe(true);
    expect((await runTransform(createDecryptStream([good]), sealed, [999])).equals(plain)).toBe(
      true,
    );
    expect(() => decryptBytes(sealed, [{ type: "scrypt", passphrase: "wrong" }])).toThrow(
      /no identity matches/,
    );
    // A key-pair identity does not read a passphrase file (and says so).
    expect(() => decryptBytes(sealed, [newKeyPair().identity])).toThrow(/no identity matches/);
  });

  it("encrypts to a passphrase with the default work factor 2^18", { timeout: 30_000 }, () => {
    const sealed = encryptBytes(Buffer.from("x"), [{ type: "scrypt", passphrase: "pw" }]);
    const header = readHeader(sealed);
    if (header === "incomplete") throw new Error("incomplete header");
    expect(header.stanzas[0]?.args[1]).toBe("18");
    expect(decryptBytes(sealed, [{ type: "scrypt", passphrase: "pw" }]).toString()).toBe("x");
  });

  it("refuses a passphrase beside other recipients, no recipients, and bad keys (usage)", () => {
    const pass = { type: "scrypt", passphrase: "pw", logN: 10 } as const;
    expect(() => encryptBytes(Buffer.alloc(1), [recipient, pass])).toThrow(UsageError);
    expect(() => createEncryptStream([pass, recipient])).toThrow(/passphrase cannot be combined/);
    expect(() => encryptBytes(Buffer.alloc(1), [])).toThrow(UsageError);
    expect(() =>
      encryptBytes(Buffer.alloc(1), [{ type: "x25519", publicKey: "age1nope" }]),
    ).toThrow(UsageError);
    expect(() => encryptBytes(Buffer.alloc(1), [{ ...pass, logN: 40 }])).toThrow(UsageError);
    expect(() =>
      decryptBytes(Buffer.alloc(1), [{ type: "x25519", secretKey: "AGE-SECRET-KEY-1X" }]),
    ).toThrow(UsageError);
  });
});
