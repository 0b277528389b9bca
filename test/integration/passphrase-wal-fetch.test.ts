/**
 * Passphrase mode through the command line: `pgha wal-fetch` of a segment not archived
 * exits 1 ("not available") without unlocking the repository key, even with a wrong
 * passphrase file; a segment that is archived still fails closed (126) with that
 * passphrase, and is delivered with the right one.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLogger } from "../../src/log.js";
import { identityKey, walKey } from "../../src/repository/keys.js";
import { encodeWalMeta } from "../../src/repository/object-meta.js";
import { EncryptingStore } from "../../src/storage/encrypting-store.js";
import { EncryptionKeys } from "../../src/storage/encryption-keys.js";
import { FsStore } from "../../src/storage/fs.js";
import { parseWalFileName } from "../../src/wal/names.js";
import { runPgha } from "../helpers/pgha.js";
import { makeSegment, segmentName } from "../helpers/segments.js";

const ARCHIVED = segmentName(1, 0, 1);
const NOT_YET = segmentName(1, 0, 2);

describe("wal-fetch in passphrase mode", { timeout: 60_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  const segment = makeSegment(1, 0, 1);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgha-pp-fetch-"));
    const repo = join(dir, "repo");
    const store = new FsStore(repo);
    const keys = new EncryptionKeys("passphrase", {
      recipients: undefined,
      identityFile: undefined,
      passphraseFile: undefined,
      passphrase: "correct horse",
    });
    const writer = new EncryptingStore(store, store, keys, memoryLogger());
    const file = parseWalFileName(ARCHIVED);
    if (!file) throw new Error(ARCHIVED);
    const sha256 = createHash("sha256").update(segment).digest("hex");
    await writer.put(walKey("main", file), segment, {
      metadata: encodeWalMeta({ sha256, rawSize: segment.length, compression: "none" }, new Date()),
    });
    await writer.put(identityKey("main"), Buffer.from("{}"));
    await writeFile(join(dir, "wrong"), "not the passphrase\n", { mode: 0o600 });
    await writeFile(join(dir, "right"), "correct horse\n", { mode: 0o600 });
    env = { PGHA_REPO: repo, PGHA_CLUSTER: "main" };
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const fetch = (name: string, passphraseFile: string) =>
    runPgha(["wal-fetch", name, join(dir, `out-${name}`)], {
      env: { ...env, PGHA_ENCRYPTION_PASSPHRASE_FILE: join(dir, passphraseFile) },
      cwd: dir,
    });

  it("not archived: exit 1 with a wrong passphrase file too", async () => {
    const result = await fetch(NOT_YET, "wrong");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(1);
  });

  it("archived: a wrong passphrase fails closed (126) on one line, the right one delivers it", async () => {
    const wrong = await fetch(ARCHIVED, "wrong");
    expect(wrong.code).toBe(126);
    expect(wrong.stderr).toMatch(/the passphrase does not unlock/);
    const right = await fetch(ARCHIVED, "right");
    expect(right.code).toBe(0);
    expect(await readFile(join(dir, `out-${ARCHIVED}`))).toEqual(segment);
  });
});
