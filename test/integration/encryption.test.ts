/**
 * An encrypted repository end to end, through the built CLI on a real PostgreSQL 15, on
 * both repository kinds: WAL, a base backup, a dump set, a drill (restore and WAL fetch,
 * its report stored), verify and the scheduler-free catalog commands all work through
 * age; every object but the plain ones is age; `age -d | zstd -d` opens a WAL segment;
 * damage and substitution exit 6; a pgha without settings, a wrong and a missing identity
 * each fail on one line; a rekey killed with SIGKILL and run again leaves everything
 * readable and ends on the new key only.
 */
import { execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { memoryLogger } from "../../src/log.js";
import { isPlainKey } from "../../src/repository/keys.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openRawStore } from "../../src/storage/open-store.js";
import { readAll } from "../../src/storage/streams.js";
import { archivingCluster } from "../helpers/archiving.js";
import { havePostgres, s3Server } from "../helpers/components.js";
import { type PgCluster, serverOwnedTempDir, serverUser } from "../helpers/pg-cluster.js";
import { PGHA_BIN, runPgha } from "../helpers/pgha.js";
import { repoKinds, type TestRepo } from "../helpers/test-repo.js";

const server = s3Server();
const pg = havePostgres();
const run = promisify(execFile);

/** The error lines pgha printed (not the hint or notes). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => /\berror\b/i.test(line) && !/hint/i.test(line));
}

describe.skipIf(!pg).each(repoKinds(server))("an encrypted %s repository", (kind) => {
  let repo: TestRepo;
  let primary: PgCluster;
  let env: Record<string, string>;
  let keyDir: string;
  let keyA: string;
  let recipientA: string;
  let raw: ObjectStore;
  const backupIds: string[] = [];

  async function generate(name: string): Promise<{ file: string; recipient: string }> {
    const file = join(keyDir, name);
    const made = await runPgha(["key", "generate", file], { asServerUser: true });
    expect(made.code, made.stderr).toBe(0);
    return { file, recipient: made.stdout.trim() };
  }

  beforeAll(async () => {
    keyDir = await serverOwnedTempDir("pgha-keys-");
    ({ file: keyA, recipient: recipientA } = await generate("a.key"));
    ({
      repo,
      cluster: primary,
      env,
    } = await archivingCluster(kind, server, {
      env: { PGHA_ENCRYPTION_RECIPIENTS: recipientA, PGHA_ENCRYPTION_IDENTITY_FILE: keyA },
    }));
    raw = await openRawStore(
      resolveConfig({ flags: {}, env: { ...process.env, ...env }, file: undefined }),
      memoryLogger(),
    );
    await primary.sql("CREATE TABLE accounts AS SELECT g AS id FROM generate_series(1, 500) g");
    for (let i = 0; i < 2; i++) {
      const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
      expect(taken.code, taken.stderr).toBe(0);
      backupIds.push(taken.stdout.trim());
    }
    await primary.sql("INSERT INTO accounts VALUES (501); SELECT pg_switch_wal()");
  });

  afterAll(async () => {
    await primary?.destroy();
    await repo?.cleanup();
  });

  it("stores every kind of object encrypted and reads each back (backup, dump, drill, verify)", async () => {
    const dumped = await runPgha(["dump", "--db", "postgres"], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    const dumpDir = await serverOwnedTempDir("pgha-dump-");
    const fetched = await runPgha(["dump", "fetch", dumped.stdout.trim(), dumpDir], { env });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(await readFile(join(dumpDir, "globals.sql"), "utf8")).toMatch(/CREATE ROLE/);
    const drill = await runPgha(["drill", "--json"], { env, asServerUser: true });
    expect(drill.code, drill.stderr).toBe(0);
    expect(JSON.parse(drill.stdout).passed).toBe(true);
    const listed = await runPgha(["drill", "list", "--json"], { env });
    expect(listed.code, listed.stderr).toBe(0);
    const pinned = await runPgha(["backup", "pin", backupIds[0] as string], { env });
    expect(pinned.code, pinned.stderr).toBe(0);
    const verified = await runPgha(["verify"], { env });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const backups = JSON.parse((await runPgha(["backup", "list", "--json"], { env })).stdout);
    expect(backups.length).toBe(2);
    expect(backups.find((b: { id: string }) => b.id === backupIds[0])?.pinned).toBe(true);
    // Every object but the plain ones is age, marked as such in its metadata.
    const kinds = new Set<string>();
    for await (const entry of raw.list("v1/")) {
      const { info, body } = await raw.get(entry.key);
      const head = (await readAll(body)).subarray(0, 22).toString();
      if (isPlainKey(entry.key)) {
        expect(head, entry.key).not.toBe("age-encryption.org/v1\n".slice(0, 22));
        continue;
      }
      expect(head, entry.key).toBe("age-encryption.org/v1\n");
      expect(info.metadata["pgha-encryption"], entry.key).toBe("age");
      kinds.add(entry.key.split("/")[3] ?? "");
    }
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining(["backups", "drills", "dumps", "wal"]),
    );
    const marker = JSON.parse(
      (await readAll((await raw.get("v1/encryption.json")).body)).toString(),
    );
    expect(marker).toMatchObject({ scheme: "age", mode: "keys", recipients: [recipientA] });
  });

  it("a WAL segment opens with the age command line and zstd", async () => {
    const segment = await firstSegmentKey(raw);
    const { info, body } = await raw.get(segment);
    const stored = await readAll(body);
    const dir = await serverOwnedTempDir("pgha-age-");
    await writeFile(join(dir, "segment.age"), stored);
    // What an operator does by hand; a local object has pgha's 4096-byte header first.
    if (kind === "local") {
      const file = join(repo.dir as string, segment);
      const { stdout } = await run("sh", [
        "-c",
        `tail -c +4097 '${file}' | age -d -i '${keyA}' | zstd -d | sha256sum`,
      ]);
      expect(stdout.split(" ")[0]).toBe(info.metadata["pgha-sha256"]);
    }
    const { stdout } = await run("sh", [
      "-c",
      `age -d -i '${keyA}' '${join(dir, "segment.age")}' | zstd -d | sha256sum`,
    ]);
    expect(stdout.split(" ")[0]).toBe(info.metadata["pgha-sha256"]);
  });

  it("a flipped byte and two swapped objects both exit 6", async () => {
    const [first, second] = backupIds;
    // A flipped byte in the middle of a bundle: `backup fetch` fails authentication.
    const bundle = (await keysUnder(raw, `v1/clusters/main/backups/${first}/data/`))[0] as string;
    const original = await readAll((await raw.get(bundle)).body);
    const info = await raw.head(bundle);
    const flipped = Buffer.from(original);
    const at = Math.floor(flipped.length / 2);
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    await raw.put(bundle, flipped, { metadata: info?.metadata ?? {} });
    const target = await serverOwnedTempDir("pgha-fetch-");
    const fetched = await runPgha(["backup", "fetch", first as string, join(target, "data")], {
      env,
      asServerUser: true,
    });
    expect(fetched.code, fetched.stderr).toBe(6);
    expect(fetched.stderr).toMatch(/failed authentication/);
    await raw.put(bundle, original, { metadata: info?.metadata ?? {} });
    // The two backups' manifests swapped (each keeps its own metadata): both authenticate
    // as age files, and pgha's own checks see that neither is where it belongs.
    const keyOf = (id: string | undefined) => `v1/clusters/main/backups/${id}/manifest.json`;
    const a = await raw.get(keyOf(first));
    const b = await raw.get(keyOf(second));
    const aBody = await readAll(a.body);
    const bBody = await readAll(b.body);
    await raw.put(keyOf(first), bBody, { metadata: a.info.metadata });
    await raw.put(keyOf(second), aBody, { metadata: b.info.metadata });
    const info1 = await runPgha(["backup", "info", first as string], { env });
    expect(info1.code, info1.stderr).toBe(6);
    await raw.put(keyOf(first), aBody, { metadata: a.info.metadata });
    await raw.put(keyOf(second), bBody, { metadata: b.info.metadata });
    expect((await runPgha(["backup", "info", first as string], { env })).code).toBe(0);
  });

  it("a pgha without settings refuses to write and to read, on one line", async () => {
    const plain = { ...env, PGHA_ENCRYPTION_RECIPIENTS: "", PGHA_ENCRYPTION_IDENTITY_FILE: "" };
    const listed = await runPgha(["backup", "info", "latest"], { env: plain });
    expect(listed.code).toBe(2);
    expect(errorLines(listed.stderr)).toHaveLength(1);
    expect(listed.stderr).toMatch(/is encrypted \(age\), and no encryption settings are given/);
    const taken = await runPgha(["backup", "--fast"], { env: plain, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(3);
    expect(taken.stderr).toMatch(/is encrypted .* nothing was written/);
  });

  it("a wrong, a missing and a loose identity each give one clear line", async () => {
    const other = await generate("other.key");
    const wrong = await runPgha(["backup", "info", "latest"], {
      env: { ...env, PGHA_ENCRYPTION_IDENTITY_FILE: other.file },
    });
    expect(wrong.code).toBe(6);
    expect(errorLines(wrong.stderr)).toHaveLength(1);
    expect(wrong.stderr).toMatch(/cannot decrypt .*no identity matches/);
    const missing = await runPgha(["backup", "info", "latest"], {
      env: { ...env, PGHA_ENCRYPTION_IDENTITY_FILE: join(keyDir, "nonexistent.key") },
    });
    expect(missing.code).toBe(2);
    expect(errorLines(missing.stderr)).toHaveLength(1);
    expect(missing.stderr).toMatch(/cannot read the identity file/);
    const writer = await runPgha(["backup", "info", "latest"], {
      env: { ...env, PGHA_ENCRYPTION_IDENTITY_FILE: "" },
    });
    expect(writer.code).toBe(2);
    expect(writer.stderr).toMatch(/no identity to read it is set/);
  });

  it("a rekey killed with SIGKILL midway and run again leaves every object readable", async () => {
    const b = await generate("b.key");
    const both = join(keyDir, "both.key");
    await writeFile(both, `${await readFile(keyA, "utf8")}${await readFile(b.file, "utf8")}`, {
      mode: 0o600,
    });
    const owner = serverUser();
    if (owner) await run("chown", [`${owner.uid}:${owner.gid}`, both]);
    const rekeyEnv = {
      ...env,
      PGHA_ENCRYPTION_RECIPIENTS: b.recipient,
      PGHA_ENCRYPTION_IDENTITY_FILE: both,
      PGHA_JOBS: "1",
      PGHA_LOG_LEVEL: "debug",
    };
    const plan = await runPgha(["repo", "rekey"], { env: rekeyEnv });
    expect(plan.code, plan.stderr).toBe(0);
    const toRewrap = Number(/rewrap (\d+) objects/.exec(plan.stdout)?.[1]);
    expect(toRewrap).toBeGreaterThan(5);
    // Killed after its third object.
    const clean: Record<string, string> = {};
    for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
    const child = spawn(PGHA_BIN, ["repo", "rekey", "--confirm"], {
      env: { ...process.env, ...clean, PGHA_NODE: process.execPath, ...rekeyEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let seen = 0;
    const killed = new Promise<void>((resolve) => {
      child.stderr.on("data", (d: Buffer) => {
        seen += (d.toString().match(/rewrapped: /g) ?? []).length;
        if (seen >= 3 && child.exitCode === null) child.kill("SIGKILL");
      });
      child.on("close", () => resolve());
    });
    await killed;
    expect(child.signalCode).toBe("SIGKILL");
    // Midway: the old key or the new one opens every object.
    const between = await runPgha(["verify"], {
      env: { ...env, PGHA_ENCRYPTION_IDENTITY_FILE: both },
    });
    expect(between.code, between.stdout + between.stderr).toBe(0);
    const left = await runPgha(["repo", "rekey"], { env: rekeyEnv });
    const remaining = Number(/rewrap (\d+) objects/.exec(left.stdout)?.[1]);
    expect(remaining).toBeLessThan(toRewrap);
    expect(remaining).toBeGreaterThan(0);
    const resumed = await runPgha(["repo", "rekey", "--confirm"], { env: rekeyEnv });
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await runPgha(["repo", "rekey"], { env: rekeyEnv });
    expect(after.stdout).toMatch(/rewrap 0 objects/);
    // Only the new key reads now; the old one opens nothing that was rewrapped.
    const newOnly = { ...env, PGHA_ENCRYPTION_RECIPIENTS: b.recipient };
    const verified = await runPgha(["verify"], {
      env: { ...newOnly, PGHA_ENCRYPTION_IDENTITY_FILE: b.file },
    });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const old = await runPgha(["backup", "info", "latest"], { env });
    expect(old.code).toBe(6);
  });
});

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.list(prefix)) keys.push(entry.key);
  return keys;
}

async function firstSegmentKey(store: ObjectStore): Promise<string> {
  for (const key of await keysUnder(store, "v1/clusters/main/wal/")) {
    if (/\/[0-9A-F]{24}(\.[0-9a-f]{64})?$/.test(key)) return key;
  }
  throw new Error("no WAL segment archived");
}

/**
 * The asynchronous archiver and the prefetcher run the same store code: an encrypted
 * repository filled by the archiver holds age objects, and a drill (wal-fetch through the
 * prefetcher on) restores from it.
 */
describe.skipIf(!pg)("an encrypted local repository with asynchronous archiving", () => {
  let setup: Awaited<ReturnType<typeof archivingCluster>>;

  afterAll(async () => {
    await setup?.destroy();
  });

  it("the archiver stores age objects, and a drill (wal-fetch with prefetch on) restores from them", async () => {
    const keyDir = await serverOwnedTempDir("pgha-keys-");
    const file = join(keyDir, "a.key");
    const made = await runPgha(["key", "generate", file], { asServerUser: true });
    expect(made.code, made.stderr).toBe(0);
    setup = await archivingCluster("local", null, {
      env: {
        PGHA_ENCRYPTION_RECIPIENTS: made.stdout.trim(),
        PGHA_ENCRYPTION_IDENTITY_FILE: file,
        PGHA_ARCHIVE_ASYNC: "true",
      },
    });
    const { cluster, env } = setup;
    await cluster.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g");
    const taken = await runPgha(["backup", "--fast"], { env, asServerUser: true });
    expect(taken.code, taken.stderr).toBe(0);
    for (let i = 0; i < 3; i++)
      await cluster.sql("INSERT INTO t VALUES (0); SELECT pg_switch_wal()");
    const last = await cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let archived = "";
    for (let i = 0; i < 400 && archived < last; i++) {
      await new Promise((r) => setTimeout(r, 250));
      archived = await cluster.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
    }
    const spoolLog = await readFile(
      join(cluster.dataDir, "pg_wal", ".pgha", "archive", "archiver.log"),
      "utf8",
    ).catch(() => "");
    expect(
      archived >= last,
      `${archived} < ${last}; ${await cluster.sql("SELECT failed_count || ' ' || coalesce(last_failed_wal, '') FROM pg_stat_archiver")}; ${spoolLog.slice(-2000)}`,
    ).toBe(true);
    // status.json is rewritten at most once a second: the stores just done may not be in it yet.
    const statusFile = join(cluster.dataDir, "pg_wal", ".pgha", "archive", "status.json");
    let status = { stored: 0 };
    for (let i = 0; i < 40 && !(status.stored > 0); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      status = JSON.parse(await readFile(statusFile, "utf8"));
    }
    expect(status.stored).toBeGreaterThan(0);
    const raw = await openRawStore(
      resolveConfig({ flags: {}, env: { ...process.env, ...env }, file: undefined }),
      memoryLogger(),
    );
    const segment = await firstSegmentKey(raw);
    const head = (await readAll((await raw.get(segment)).body)).subarray(0, 21).toString();
    expect(head).toBe("age-encryption.org/v1");
    const drill = await runPgha(["drill", "--json"], {
      env: { ...env, PGHA_PREFETCH: "4" },
      asServerUser: true,
    });
    expect(drill.code, drill.stderr).toBe(0);
    expect(JSON.parse(drill.stdout).passed).toBe(true);
  }, 240_000);
});
