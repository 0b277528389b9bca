/**
 * Throughput of the age codec (src/crypto/): `npx tsx bench/age-codec.ts` (and `npm run
 * build` first for the import-cost rows, which load dist/ as pgha does).
 *
 * For a 16 MiB buffer (one WAL segment): encryptBytes / decryptBytes, the streams fed in
 * 64 KiB and 1 MiB writes, and one ChaCha20-Poly1305 pass over the buffer (the cipher's
 * own speed, an upper bound). Best and median MiB/s of PGHA_BENCH_ROUNDS (default 15)
 * rounds. Then the wall time of a cold `node` that imports the codec, against `node -e 0`.
 */
import { execFileSync } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { Transform } from "node:stream";
import {
  createDecryptStream,
  createEncryptStream,
  decryptBytes,
  encryptBytes,
  generateX25519Identity,
} from "../src/crypto/age.js";

const MIB = 1 << 20;
const SIZE = 16 * MIB;
const ROUNDS = Number(process.env.PGHA_BENCH_ROUNDS ?? 15);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const rate = (ms: number) => ((SIZE / MIB / ms) * 1000).toFixed(0).padStart(6);

/**
 * Best and median wall time, and median CPU time (user + system of this process: the
 * honest figure on a shared machine, where wall time includes waiting for a core).
 */
function measure(name: string, run: () => void | Promise<void>): Promise<void> {
  return (async () => {
    await run(); // warm-up
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const [w, c] = [performance.now(), cpuMs()];
      await run();
      wall.push(performance.now() - w);
      cpu.push(cpuMs() - c);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const bestWall = Math.min(...wall);
    console.log(
      `${name.padEnd(44)} wall best ${rate(bestWall)} median ${rate(median(wall))}   cpu median ${rate(median(cpu))} MiB/s`,
    );
  })();
}

/** Writes input in pieces of writeSize and drains the output; resolves with its length. */
function pump(transform: Transform, input: Buffer, writeSize: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let length = 0;
    transform.on("data", (chunk: Buffer) => {
      length += chunk.length;
    });
    transform.on("error", reject);
    transform.on("end", () => resolve(length));
    let pos = 0;
    const write = () => {
      while (pos < input.length) {
        const piece = input.subarray(pos, pos + writeSize);
        pos += piece.length;
        if (!transform.write(piece)) {
          transform.once("drain", write);
          return;
        }
      }
      transform.end();
    };
    write();
  });
}

const { secretKey, publicKey } = generateX25519Identity();
const recipients = [{ type: "x25519", publicKey } as const];
const identities = [{ type: "x25519", secretKey } as const];
const plain = randomBytes(SIZE);
const sealed = encryptBytes(plain, recipients);
if (!decryptBytes(sealed, identities).equals(plain)) throw new Error("round trip failed");

console.log(`16 MiB buffer, ${ROUNDS} rounds, node ${process.version}`);
await measure("chacha20-poly1305, one pass (upper bound)", () => {
  const cipher = createCipheriv("chacha20-poly1305", randomBytes(32), randomBytes(12), {
    authTagLength: 16,
  });
  cipher.update(plain);
  cipher.final();
});
await measure("encryptBytes", () => void encryptBytes(plain, recipients));
await measure("decryptBytes", () => void decryptBytes(sealed, identities));
for (const writeSize of [64 * 1024, MIB]) {
  const label = writeSize === MIB ? "1 MiB" : "64 KiB";
  await measure(`createEncryptStream, ${label} writes`, async () => {
    await pump(createEncryptStream(recipients), plain, writeSize);
  });
  await measure(`createDecryptStream, ${label} writes`, async () => {
    await pump(createDecryptStream(identities), sealed, writeSize);
  });
}

const built = "dist/src/crypto/age.js";
if (existsSync(built)) {
  // In-process time of the import (the process start itself is the same for all rows),
  // median of 21 cold processes.
  const importMs = (specifiers: string[]) => {
    const code = `const t = performance.now(); ${specifiers.map((m) => `await import(${JSON.stringify(m)});`).join(" ")} console.log(performance.now() - t);`;
    const times: number[] = [];
    for (let i = 0; i < 21; i++) {
      times.push(Number(execFileSync(process.execPath, ["--input-type=module", "-e", code])));
    }
    return (times.sort((a, b) => a - b)[10] as number).toFixed(2);
  };
  // What wal-push sees: one call in a fresh process (its memory not yet recycled).
  const firstCall = `const a = await import("./${built}"); const k = a.generateX25519Identity(); const p = (await import("node:crypto")).randomBytes(${SIZE}); const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; let t = cpu(); const s = a.encryptBytes(p, [{ type: "x25519", publicKey: k.publicKey }]); const e = cpu() - t; t = cpu(); a.decryptBytes(s, [{ type: "x25519", secretKey: k.secretKey }]); console.log(e, cpu() - t);`;
  const firsts = Array.from({ length: 9 }, () =>
    String(execFileSync(process.execPath, ["--input-type=module", "-e", firstCall]))
      .trim()
      .split(" ")
      .map(Number),
  );
  const mid = (i: number) => firsts.map((f) => f[i] as number).sort((a, b) => a - b)[4] as number;
  console.log(
    `first call in a fresh process, cpu median of 9: encryptBytes ${rate(mid(0))} MiB/s (${mid(0).toFixed(1)} ms), decryptBytes ${rate(mid(1))} MiB/s (${mid(1).toFixed(1)} ms)`,
  );
  console.log("import from a cold node, median of 21 (ms):");
  console.log(`  node:crypto + node:stream alone  ${importMs(["node:crypto", "node:stream"])}`);
  console.log(`  the codec (${built})  ${importMs([`./${built}`])}`);
} else {
  console.log(`(no ${built}: npm run build for the import-cost rows)`);
}
