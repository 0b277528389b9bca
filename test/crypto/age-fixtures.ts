/** Shared helpers for the age codec tests: keys, streaming through a Transform in odd writes. */
import { randomBytes } from "node:crypto";
import type { Transform } from "node:stream";
import {
  type AgeIdentity,
  type AgeRecipient,
  generateX25519Identity,
} from "../../src/crypto/age.js";

export const KIB = 1024;
export const MIB = 1024 * KIB;

export function newKeyPair(): { recipient: AgeRecipient; identity: AgeIdentity } {
  const { secretKey, publicKey } = generateX25519Identity();
  return {
    recipient: { type: "x25519", publicKey },
    identity: { type: "x25519", secretKey },
  };
}

/** Deterministic-length random data (content random: compressible data hides nothing). */
export function randomData(length: number): Buffer {
  return randomBytes(length);
}

/**
 * Runs input through the transform in writes of the given sizes (cycled), and collects
 * the output; rejects with the stream's error. `emitted` receives what came out before.
 */
export async function runTransform(
  transform: Transform,
  input: Buffer,
  writeSizes: readonly number[] = [input.length || 1],
  emitted: Buffer[] = [],
): Promise<Buffer> {
  const done = new Promise<Buffer>((resolve, reject) => {
    transform.on("data", (chunk: Buffer) => emitted.push(chunk));
    transform.on("error", reject);
    transform.on("end", () => resolve(Buffer.concat(emitted)));
  });
  let pos = 0;
  let i = 0;
  while (pos < input.length) {
    const size = writeSizes[i++ % writeSizes.length] as number;
    const piece = input.subarray(pos, pos + size);
    pos += piece.length;
    if (!transform.write(piece)) {
      await new Promise<void>((resolve, reject) => {
        transform.once("drain", resolve);
        transform.once("error", reject);
      }).catch(() => undefined);
      if (transform.destroyed) break;
    }
  }
  if (!transform.destroyed) transform.end();
  return done;
}
