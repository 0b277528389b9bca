/**
 * Interop with the age command line (Debian's `age`, the reference implementation): files
 * pgha writes open with `age -d`, files `age -e` writes open with pgha, for a 16 MiB
 * WAL-like segment (plain, and zstd-compressed as pgha stores WAL). Outside CI a missing
 * `age` skips these tests with a warning; under CI=true it fails them.
 */
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compressBuffer } from "../../src/compress/codec.js";
import {
  createDecryptStream,
  createEncryptStream,
  decryptBytes,
  encryptBytes,
  generateX25519Identity,
  parseIdentityFile,
  publicKeyOf,
  readHeader,
} from "../../src/crypto/age.js";
import { makeSegment } from "../helpers/segments.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";
import { MIB, randomData, runTransform } from "./age-fixtures.js";

const ci = process.env.CI === "true";

function haveAge(): boolean {
  const ok = ["age", "age-keygen", "script"].every(
    (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0,
  );
  if (!ok && ci) {
    throw new Error("CI requires the age command line (Debian package age) and script(1)");
  }
  if (!ok) process.stderr.write("WARNING: age command line missing; skipping its interop tests\n");
  return ok;
}

function run(command: string, args: readonly string[], input?: Buffer): Buffer {
  const result = spawnSync(command, args, { input, maxBuffer: 256 * MIB });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Runs age under script(1): age reads passphrases from the terminal only, so it gets a
 * pseudo-terminal whose typed-ahead input is the lines given.
 */
function runWithTerminal(ageArgs: readonly string[], lines: readonly string[]): void {
  const command = ["age", ...ageArgs].map((a) => `'${a}'`).join(" ");
  const result = spawnSync("script", ["-qec", command, "/dev/null"], {
    input: lines.map((l) => `${l}\n`).join(""),
    timeout: 30_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `age ${ageArgs.join(" ")} under script exited ${result.status}: ${result.stdout}`,
    );
  }
}

/** 16 MiB of WAL-like data: page headers, random records in the first part, zeros after. */
function walLikeSegment(): Buffer {
  const segment = makeSegment(1, 0, 1, { segmentSize: 16 * MIB });
  for (let page = 0; page < (16 * MIB) / 8192; page++) {
    segment.writeUInt16LE(0xd110, page * 8192);
    if (page < 1400) randomData(3000).copy(segment, page * 8192 + 100);
  }
  return segment;
}

// scrypt at age's default work factor and 16 MiB through a shared machine: not 5 s.
describe.runIf(haveAge())("interop with the age command line", { timeout: 60_000 }, () => {
  const dir = freshDirPerTest("pgha-age-cli-");
  const segment = walLikeSegment();

  it("age-keygen's key files and pgha's keys are the same keys", async () => {
    const keyFile = join(dir.path, "key.txt");
    run("age-keygen", ["-o", keyFile]);
    const identities = parseIdentityFile(await readFile(keyFile, "utf8"));
    const secretKey = identities[0]?.type === "x25519" ? identities[0].secretKey : "";
    expect(publicKeyOf(secretKey)).toBe(run("age-keygen", ["-y", keyFile]).toString().trim());
    const ours = generateX25519Identity();
    await writeFile(join(dir.path, "ours.txt"), `${ours.secretKey}\n`);
    expect(
      run("age-keygen", ["-y", join(dir.path, "ours.txt")])
        .toString()
        .trim(),
    ).toBe(ours.publicKey);
  });

  it("`age -e -r` output decrypts with decryptBytes and createDecryptStream (16 MiB)", async () => {
    const keyFile = join(dir.path, "key.txt");
    run("age-keygen", ["-o", keyFile]);
    const identities = parseIdentityFile(await readFile(keyFile, "utf8"));
    const publicKey = run("age-keygen", ["-y", keyFile]).toString().trim();
    const other = generateX25519Identity();
    const sealed = run("age", ["-e", "-r", other.publicKey, "-r", publicKey], segment);
    const info = readHeader(sealed);
    if (info === "incomplete") throw new Error("incomplete header");
    expect(info.stanzas.filter((s) => s.type === "X25519")).toHaveLength(2);
    expect(decryptBytes(sealed, identities).equals(segment)).toBe(true);
    const streamed = await runTransform(createDecryptStream(identities), sealed, [100_000, 7]);
    expect(streamed.equals(segment)).toBe(true);
    const otherIdentity = { type: "x25519", secretKey: other.secretKey } as const;
    expect(decryptBytes(sealed, [otherIdentity]).equals(segment)).toBe(true);
  });

  it("encryptBytes and createEncryptStream output decrypts with `age -d -i` (then zstd -d)", async () => {
    const { secretKey, publicKey } = generateX25519Identity();
    const keyFile = join(dir.path, "key.txt");
    await writeFile(
      keyFile,
      `# created by pgha's test\n# public key: ${publicKey}\n${secretKey}\n`,
    );
    const recipients = [{ type: "x25519", publicKey } as const];
    const compressed = await compressBuffer({ algorithm: "zstd", level: 1 }, segment);
    expect(compressed.length).toBeGreaterThan(4 * MIB); // several chunks
    const file = join(dir.path, "000000010000000000000001.zst.age");
    await writeFile(file, encryptBytes(compressed, recipients));
    expect(run("age", ["-d", "-i", keyFile, file]).equals(compressed)).toBe(true);
    const roundTrip = run("sh", ["-c", `age -d -i '${keyFile}' '${file}' | zstd -dc`]);
    expect(roundTrip.equals(segment)).toBe(true);
    const streamed = await runTransform(
      createEncryptStream(recipients),
      segment,
      [65_536, 1, 8192],
    );
    expect(run("age", ["-d", "-i", keyFile], streamed).equals(segment)).toBe(true);
  });

  it("a passphrase file from pgha decrypts with age, and age's with pgha", async () => {
    const plain = randomData(MIB + 5);
    const ours = join(dir.path, "ours.age");
    const passphrase = "correct horse battery";
    await writeFile(ours, encryptBytes(plain, [{ type: "scrypt", passphrase, logN: 14 }]));
    runWithTerminal(["-d", "-o", join(dir.path, "ours.out"), ours], [passphrase]);
    expect((await readFile(join(dir.path, "ours.out"))).equals(plain)).toBe(true);

    const plainFile = join(dir.path, "plain");
    await writeFile(plainFile, plain);
    const theirs = join(dir.path, "theirs.age");
    runWithTerminal(["-p", "-o", theirs, plainFile], [passphrase, passphrase]);
    const sealed = await readFile(theirs);
    expect(decryptBytes(sealed, [{ type: "scrypt", passphrase }]).equals(plain)).toBe(true);
  });

  it("age refuses a pgha file that was tampered with", async () => {
    const { secretKey, publicKey } = generateX25519Identity();
    const keyFile = join(dir.path, "key.txt");
    await writeFile(keyFile, `${secretKey}\n`);
    const sealed = encryptBytes(randomData(200_000), [{ type: "x25519", publicKey }]);
    sealed[sealed.length - 70_000] = (sealed[sealed.length - 70_000] as number) ^ 1;
    const result = spawnSync("age", ["-d", "-i", keyFile], { input: sealed, maxBuffer: MIB });
    expect(result.status).not.toBe(0);
  });
});
