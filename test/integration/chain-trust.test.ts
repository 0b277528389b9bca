/**
 * What pgha says about an incremental backup's chain, on a real PostgreSQL 15 and a local
 * repository (a backup is only as good as its chain): a corrupt bundle of the full fails
 * `verify --backup <incr>` and every increment in a full verify, `backup list` shows them
 * FAILED, and `backup --type incr` then takes a full; a middle member's manifest removed
 * makes the newest backup unrestorable in `status` and `metrics` as in `backup list`; a
 * backup or dump after one killed with SIGKILL takes its lock over with a warning.
 */
import { spawn } from "node:child_process";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupManifestKey, backupPrefix, lockKey } from "../../src/repository/keys.js";
import { type ArchivingSetup, archivingCluster } from "../helpers/archiving.js";
import { havePostgres } from "../helpers/components.js";
import { collectOutput, type PgCluster, serverUser } from "../helpers/pg-cluster.js";
import { PGHA_BIN, runPgha } from "../helpers/pgha.js";
import { parsePromText } from "../helpers/prom-text.js";

const pg = havePostgres();

interface Listed {
  id: string;
  type: string;
  parent: string | null;
  restorable: boolean;
  lastVerified: { ok: boolean; failedChain: string[] } | null;
}

describe.skipIf(!pg)("what pgha says about a chain", () => {
  let setup: ArchivingSetup;
  let cluster: PgCluster;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};
  let sound: { backups: { id: string; ok: boolean }[] };
  /** The corrupted bundle of the full. */
  let key: string;

  const pgha = (args: string[], more: Record<string, string> = {}) =>
    runPgha(args, { env: { ...env, ...more }, asServerUser: true });
  const backup = async (type: "full" | "incr") => {
    const taken = await pgha(["backup", "--fast", "--type", type], { PGHA_LOG_LEVEL: "info" });
    expect(taken.code, taken.stderr).toBe(0);
    return { id: taken.stdout.trim(), log: taken.stderr };
  };
  const change = (n: number) =>
    cluster.sql(`UPDATE t SET v = md5(v) WHERE id % 97 = ${n}; CHECKPOINT`);
  const list = async (): Promise<Listed[]> => {
    const listed = await pgha(["backup", "list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    return JSON.parse(listed.stdout) as Listed[];
  };
  const repoDir = () => setup.repo.dir as string;

  beforeAll(async () => {
    setup = await archivingCluster("local", null, { conf: ["autovacuum = off"] });
    cluster = setup.cluster;
    env = setup.env;
    await cluster.sql(
      "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g",
    );
    ids.F = (await backup("full")).id;
    await change(1);
    ids.I1 = (await backup("incr")).id;
    await change(2);
    ids.I2 = (await backup("incr")).id;
    const verified = await pgha(["verify", "--backup", ids.I2, "--json"]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    sound = JSON.parse(verified.stdout);
    // Then one byte flipped in the full's largest bundle.
    const dataDir = join(repoDir(), backupPrefix("main", ids.F), "data");
    const bundles = (await readdir(dataDir)).filter((n) => /^base\.\d+\.tar$/.test(n));
    const sized = await Promise.all(
      bundles.map(async (n) => ({ n, size: (await stat(join(dataDir, n))).size })),
    );
    const largest = sized.sort((a, b) => b.size - a.size)[0]?.n;
    key = `${backupPrefix("main", ids.F)}data/${largest}`;
    await setup.repo.corrupt(key);
  });

  afterAll(async () => {
    await setup?.destroy();
  });

  it("verify --backup of an increment checks its chain and fails with its full's corrupt bundle; backup list shows it FAILED", async () => {
    const { F, I1, I2 } = ids as Record<"F" | "I1" | "I2", string>;
    expect((await list()).map((b) => [b.id, b.type, b.parent])).toEqual([
      [F, "full", null],
      [I1, "incr", F],
      [I2, "incr", I1],
    ]);
    // Before the corruption (beforeAll): the chain is checked too, and was ok.
    expect(sound.backups.map((b) => [b.id, b.ok])).toEqual([
      [F, true],
      [I1, true],
      [I2, true],
    ]);
    const json = await pgha(["verify", "--backup", I2, "--json"]);
    expect(json.code, json.stderr).toBe(6);
    const report = JSON.parse(json.stdout);
    expect(
      report.findings.map((f: { kind: string; object: string }) => [f.kind, f.object]),
    ).toEqual([["checksum", key]]);
    const verdicts = report.backups.map((b: { id: string; ok: boolean; failedChain: string[] }) => [
      b.id,
      b.ok,
      b.failedChain,
    ]);
    expect(verdicts).toEqual([
      [F, false, []],
      [I1, false, [F]],
      [I2, false, [F]],
    ]);
    const text = await pgha(["verify", "--backup", I2]);
    expect(text.code).toBe(6);
    expect(text.stdout).toContain(
      `backup ${I2} FAILED with its chain: backup ${F} of its chain has errors`,
    );
    expect(text.stdout).toMatch(/backups: 3 checked, 3 with errors/);

    const listed = await list();
    for (const b of listed) expect(b.lastVerified, b.id).toMatchObject({ ok: false });
    // I1's record failed with F's, so both are named.
    expect(listed.find((b) => b.id === I2)?.lastVerified?.failedChain).toEqual([F, I1]);
    const table = await pgha(["backup", "list"]);
    expect(table.stdout.split("\n").find((l) => l.startsWith(I2))).toMatch(
      new RegExp(`FAILED \\(chain: ${F}, ${I1} failed\\)`),
    );
  });

  it("a full verify marks every backup whose chain holds the failed full", async () => {
    const { F, I1, I2 } = ids as Record<"F" | "I1" | "I2", string>;
    const json = await pgha(["verify", "--json"]);
    expect(json.code, json.stderr).toBe(6);
    const report = JSON.parse(json.stdout);
    expect(report.backups.map((b: { id: string; ok: boolean }) => [b.id, b.ok])).toEqual([
      [F, false],
      [I1, false],
      [I2, false],
    ]);
    // status and metrics: the newest backup fails with its chain too.
    const status = JSON.parse((await pgha(["status", "--json"])).stdout);
    expect(status.lastBackup).toMatchObject({ id: I2, restorable: false });
    expect(status.lastBackup.verifyFailed).toEqual([F, I1, I2]);
    expect((await pgha(["status"])).stdout).toContain(
      `NOT restorable (the last verify of ${F}, ${I1}, ${I2} FAILED)`,
    );
    const metrics = parsePromText((await pgha(["metrics"])).stdout);
    expect(metrics.get("pgha_backup_last_restorable")?.samples[0]?.value).toBe(0);
  });

  it("backup --type incr on a chain whose full failed its verify takes a full, saying why", async () => {
    const { F } = ids as Record<"F", string>;
    const taken = await backup("incr");
    expect(taken.log).toContain(
      `taking a full backup instead of an incremental one: the last verify of a backup of its chain, ${F}, FAILED`,
    );
    ids.F2 = taken.id;
    await change(3);
    const next = await backup("incr"); // its parent has no verify record: an increment
    ids.I3 = next.id;
    const listed = await list();
    expect(listed.find((b) => b.id === ids.F2)?.type).toBe("full");
    expect(listed.find((b) => b.id === ids.I3)).toMatchObject({ type: "incr", parent: ids.F2 });
  });

  it("status and metrics say the newest backup is not restorable when a middle member's manifest is gone", async () => {
    await change(4);
    ids.I4 = (await backup("incr")).id;
    const { I3, I4 } = ids as Record<"I3" | "I4", string>;
    const before = JSON.parse((await pgha(["status", "--json"])).stdout);
    expect(before.lastBackup).toMatchObject({ id: I4, restorable: true });

    await rm(join(repoDir(), backupManifestKey("main", I3)));
    expect((await list()).find((b) => b.id === I4)?.restorable).toBe(false);
    const status = await pgha(["status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    const last = JSON.parse(status.stdout).lastBackup;
    expect(last).toMatchObject({ id: I4, restorable: false });
    expect(last.chainLacks).toBe(I3);
    const text = await pgha(["status"]);
    expect(text.stdout).toContain(`NOT restorable (it needs backup ${I3} of its chain`);
    const metrics = await pgha(["metrics"]);
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(
      parsePromText(metrics.stdout).get("pgha_backup_last_restorable")?.samples[0]?.value,
    ).toBe(0);
  });

  /** Starts `pgha <args>` and kills it with SIGKILL once its lock is in the repository. */
  async function killWhenLocked(args: string[], lock: string): Promise<void> {
    const clean: Record<string, string> = {};
    for (const key of Object.keys(process.env)) if (key.startsWith("PGHA_")) clean[key] = "";
    const child = spawn(PGHA_BIN, args, {
      env: { ...process.env, ...clean, PGHA_NODE: process.execPath, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(serverUser() ?? {}),
    });
    const out = collectOutput(child);
    const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
    const path = join(repoDir(), lockKey("main", lock));
    while (child.exitCode === null && child.signalCode === null) {
      if (await stat(path).catch(() => undefined)) {
        child.kill("SIGKILL");
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await closed;
    expect(child.signalCode, out.stderr).toBe("SIGKILL");
  }

  it("a backup after one killed with SIGKILL takes its lock over, with a warning", async () => {
    await killWhenLocked(["backup", "--fast"], "cluster");
    const after = await pgha(["backup", "--fast"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(
      /taking over the 'cluster' lock of backup \(.*\): its process \d+ on \S+ is gone/,
    );
  });

  it("a dump after one killed with SIGKILL takes its lock over, with a warning", async () => {
    await killWhenLocked(["dump"], "dump");
    const after = await pgha(["dump"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(
      /taking over the 'dump' lock of dump \(.*\): its process \d+ on \S+ is gone/,
    );
  });
});
