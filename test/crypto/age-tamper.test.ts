/**
 * Anything that changes an age file's bytes fails authentication (IntegrityError, exit 6):
 * a flipped byte anywhere, truncation, trailing data, a reordered, dropped or unflagged
 * chunk, a header whose MAC or file key does not belong to the payload.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createDecryptStream,
  decryptBytes,
  encryptBytes,
  NoMatchingIdentityError,
  readHeader,
} from "../../src/crypto/age.js";
import { formatHeader } from "../../src/crypto/age-header.js";
import { wrapForRecipients } from "../../src/crypto/age-keys.js";
import { ChunkSealer, payloadKey } from "../../src/crypto/age-stream.js";
import { EXIT_CODES, exitCodeOf, IntegrityError } from "../../src/errors.js";
import { KIB, newKeyPair, randomData, runTransform } from "./age-fixtures.js";

const { recipient, identity } = newKeyPair();

function headerBytesOf(file: Buffer): number {
  const header = readHeader(file);
  if (header === "incomplete") throw new Error("incomplete header");
  return header.headerBytes;
}

/** The error decryptBytes throws (fails the test if it returns). */
function decryptError(file: Buffer): unknown {
  try {
    decryptBytes(file, [identity]);
  } catch (error) {
    return error;
  }
  throw new Error("decryptBytes accepted a damaged file");
}

/** Both decrypters refuse file with exit 6; the stream emitted only a prefix of plain. */
async function expectRefused(file: Buffer, plain: Buffer, message = /failed authentication/) {
  const error = decryptError(file);
  expect(error).toBeInstanceOf(IntegrityError);
  expect(exitCodeOf(error)).toBe(EXIT_CODES.integrity);
  expect((error as Error).message).toMatch(message);
  const emitted: Buffer[] = [];
  await expect(
    runTransform(createDecryptStream([identity]), file, [4096, 65_552, 1], emitted),
  ).rejects.toThrow(message);
  const got = Buffer.concat(emitted);
  expect(got.equals(plain.subarray(0, got.length))).toBe(true);
  return got;
}

/** A file made chunk by chunk, with the last flags and sizes given (rule breaking allowed). */
function craft(chunks: { plain: Buffer; last: boolean }[], payloadFileKey?: Buffer): Buffer {
  const fileKey = randomBytes(16);
  const header = formatHeader(wrapForRecipients(fileKey, [recipient]), fileKey);
  const nonce = randomBytes(16);
  const sealer = new ChunkSealer(payloadKey(payloadFileKey ?? fileKey, nonce));
  return Buffer.concat([header, nonce, ...chunks.flatMap((c) => sealer.seal(c.plain, c.last))]);
}

describe("age authentication", () => {
  const plain = randomData(2 * 64 * KIB + 100); // three chunks, the last short
  const file = encryptBytes(plain, [recipient]);
  const headerBytes = headerBytesOf(file);

  it("a flipped byte anywhere in the header fails (exit 6)", () => {
    const stanzaEnd = file.indexOf("\n---") + 1;
    for (let i = 0; i < headerBytes; i++) {
      const damaged = Buffer.from(file);
      damaged[i] = (damaged[i] as number) ^ 0x01;
      const error = decryptError(damaged);
      expect(exitCodeOf(error), `byte ${i}`).toBe(EXIT_CODES.integrity);
      // In the X25519 stanza a flip is indistinguishable from another recipient's stanza.
      const expected =
        i >= 22 && i < stanzaEnd && error instanceof NoMatchingIdentityError
          ? /no identity matches/
          : /failed authentication/;
      expect((error as Error).message, `byte ${i}`).toMatch(expected);
    }
  });

  it("a flipped byte in the nonce or in any chunk (data or tag) fails", async () => {
    const positions = [
      headerBytes, // payload nonce
      headerBytes + 15,
      headerBytes + 16, // chunk 0
      headerBytes + 16 + 65_536 + 3, // chunk 0's tag
      headerBytes + 16 + 65_552 + 40_000, // chunk 1
      file.length - 120, // chunk 2 (final)
      file.length - 1, // final tag
    ];
    for (const pos of positions) {
      const damaged = Buffer.from(file);
      damaged[pos] = (damaged[pos] as number) ^ 0x80;
      await expectRefused(damaged, plain);
    }
  });

  it("a flip in a later chunk releases only the chunks before it", async () => {
    const damaged = Buffer.from(file);
    const pos = headerBytes + 16 + 65_552 + 5;
    damaged[pos] = (damaged[pos] as number) ^ 0x80;
    const got = await expectRefused(damaged, plain, /chunk 1 does not authenticate/);
    expect(got.length).toBe(64 * KIB);
  });

  it("truncation anywhere fails, including at a chunk boundary", async () => {
    const cuts = [
      0,
      10,
      headerBytes - 1,
      headerBytes,
      headerBytes + 8,
      headerBytes + 16, // nonce only: no chunks
      headerBytes + 16 + 15,
      headerBytes + 16 + 65_552, // one full chunk, not marked last
      headerBytes + 16 + 2 * 65_552,
      file.length - 1,
    ];
    for (const cut of cuts) {
      const message = cut < 21 ? /failed authentication/ : /failed authentication|truncated/;
      await expectRefused(file.subarray(0, cut), plain, message);
    }
  });

  it("trailing data fails, short or long", async () => {
    await expectRefused(Buffer.concat([file, Buffer.from([0])]), plain);
    await expectRefused(Buffer.concat([file, randomData(70 * KIB)]), plain);
  });

  it("a header swapped onto another file's payload fails (same recipient)", async () => {
    const other = encryptBytes(plain, [recipient]);
    const swapped = Buffer.concat([
      file.subarray(0, headerBytes),
      other.subarray(headerBytesOf(other)),
    ]);
    await expectRefused(swapped, plain);
  });

  it("a header MAC that does not match fails", async () => {
    const text = file.subarray(0, headerBytes).toString("latin1");
    const forged = text.replace(
      /--- .*\n$/,
      `--- ${randomBytes(32).toString("base64").slice(0, 43)}\n`,
    );
    await expectRefused(
      Buffer.concat([Buffer.from(forged, "latin1"), file.subarray(headerBytes)]),
      plain,
      /header MAC does not match/,
    );
  });

  it("a payload sealed under another file key fails on its first chunk", async () => {
    const forged = craft([{ plain: Buffer.from("x"), last: true }], randomBytes(16));
    await expectRefused(forged, Buffer.from("x"), /chunk 0 does not authenticate/);
  });

  it("follows STREAM's rules on the last chunk", async () => {
    const full = randomData(64 * KIB);
    const tail = Buffer.from("tail");
    // Valid: a full last chunk, two full chunks, an empty payload as one empty chunk.
    expect(decryptBytes(craft([{ plain: full, last: true }]), [identity]).equals(full)).toBe(true);
    expect(
      decryptBytes(
        craft([
          { plain: full, last: false },
          { plain: full, last: true },
        ]),
        [identity],
      ).length,
    ).toBe(128 * KIB);
    expect(decryptBytes(craft([{ plain: Buffer.alloc(0), last: true }]), [identity]).length).toBe(
      0,
    );
    // Invalid: the final chunk not marked last, an empty last chunk after a full one, two
    // final chunks, a short chunk before the last, no chunk at all.
    await expectRefused(craft([{ plain: tail, last: false }]), tail);
    await expectRefused(craft([{ plain: full, last: false }]), full);
    await expectRefused(
      craft([
        { plain: full, last: false },
        { plain: Buffer.alloc(0), last: true },
      ]),
      full,
      /empty chunk/,
    );
    await expectRefused(
      craft([
        { plain: full, last: true },
        { plain: tail, last: true },
      ]),
      full,
    );
    await expectRefused(
      craft([
        { plain: tail, last: false },
        { plain: tail, last: true },
      ]),
      tail,
    );
    await expectRefused(craft([]), Buffer.alloc(0));
  });

  it("a file for other keys is its own error, still exit 6, with a hint", () => {
    const error = decryptError(
      encryptBytes(plain, [newKeyPair().recipient, newKeyPair().recipient]),
    );
    expect(error).toBeInstanceOf(NoMatchingIdentityError);
    expect(exitCodeOf(error)).toBe(EXIT_CODES.integrity);
    expect((error as NoMatchingIdentityError).message).toBe(
      "age: no identity matches: the object is encrypted to 2 X25519 keys, and the identities given (X25519 key) unwrap none of them",
    );
    expect((error as NoMatchingIdentityError).hint).toMatch(/identity file/);
  });
});
