/**
 * Section "backup": the bench cluster (pgbench scale BENCH_SCALE), archiving into both
 * tools' repositories at once, is backed up by `pgha backup --fast` and by
 * `pgbackrest backup --type=full` (start-fast) at each process-max of BENCH_BACKUP_JOBS;
 * then each tool restores its latest backup into an empty directory (pgha restore run,
 * pgbackrest restore). Rounds interleave the variants; every run starts with the archiver
 * idle and after a global sync. Wall time, and peak RSS two ways: the largest process
 * (/usr/bin/time) and the whole process tree (summed, sampled every 100 ms from /proc).
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { PGHA_ENTRY, pghaCommandLine } from "../test/helpers/pgha.js";
import {
  type Command,
  fixed,
  log,
  type MeasuredRun,
  measured,
  onCleanup,
  renderTable,
  sleep,
  syncAll,
} from "./common.js";
import { type BenchMaterial, confString, serverMkdir } from "./peer-cluster.js";
import { interleaveRounds, medianOf, ratio } from "./peer-report.js";
import type { BenchS3 } from "./peer-s3.js";
import { pghaS3Env, withEnv } from "./peer-tools.js";
import { pgBackRest, pgBackRestLine, writePgBackRestConfig } from "./pgbackrest.js";

/** A pgha way of taking and restoring a base backup (more arguments = one more entry). */
export interface PghaBackupVariant {
  id: string;
  label: string;
  /** The job count it compares at (pgBackRest runs with the same process-max). */
  jobs: number;
  backupArgs?: string[];
  restoreArgs?: string[];
  env?: Record<string, string>;
}

/** Today pgha backs up and restores with one stream. */
export const PGHA_BACKUP_VARIANTS: PghaBackupVariant[] = [{ id: "pgha", label: "pgha", jobs: 1 }];

export interface BackupRow {
  id: string;
  label: string;
  family: "pgha" | "pgbackrest";
  jobs: number;
  backups: { wallMs: number; maxRssKb: number; treeRssKb: number; storedBytes: number }[];
  restores: { wallMs: number; maxRssKb: number; treeRssKb: number }[];
  backupMs: number;
  restoreMs: number;
  storedBytes: number;
  /** Peak over all runs, MB (MiB). */
  peakRssMb: number;
  peakTreeRssMb: number;
  backupVsPgbr: number | null;
  restoreVsPgbr: number | null;
}

async function archiverIdle(dataDir: string, timeoutMs = 600_000): Promise<void> {
  const status = join(dataDir, "pg_wal", "archive_status");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = (await readdir(status)).filter((name) => name.endsWith(".ready"));
    if (ready.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`the archiver still has ${ready.length} segments to push`);
    await sleep(200);
  }
}

interface BackupVariant {
  id: string;
  label: string;
  family: "pgha" | "pgbackrest";
  jobs: number;
  /** Takes one backup; returns its id (or label) and stored bytes. */
  backup(scratch: string): Promise<{ run: MeasuredRun; id: string; storedBytes: number }>;
  restore(id: string, into: string, scratch: string): Promise<MeasuredRun>;
}

export async function runBackupSection(
  material: BenchMaterial,
  s3: BenchS3,
  jobsList: number[],
  rounds: number,
  pghaVariants: PghaBackupVariant[] = PGHA_BACKUP_VARIANTS,
): Promise<{ rows: BackupRow[]; databaseBytes: number }> {
  const { cluster } = material;
  const scratch = await serverOwnedTempDir("pgha-bench-backup-");
  onCleanup(scratch, () => rm(scratch, { recursive: true, force: true }));
  const pgbrDir = await serverMkdir(join(scratch, "pgbackrest"));
  const config = await writePgBackRestConfig({
    dir: pgbrDir,
    s3,
    endpoint: s3.loopback,
    prefix: "backup-pgbackrest",
    pgPath: cluster.dataDir,
    pgSocketDir: cluster.socketDir,
    pgPort: cluster.port,
    async: false,
    processMax: 1,
  });
  const pghaEnv = {
    ...pghaS3Env(s3, s3.loopback, "backup-pgha"),
    ...cluster.connEnv(),
    PGHA_ARCHIVE_TIMEOUT: "300s",
  };
  // Both repositories get every segment, so that each tool's backup finds its WAL; the
  // measured tool's push runs first, so that neither waits for the other's.
  const pushes = {
    pgha: withEnv(pghaEnv, pghaCommandLine("wal-push %p")),
    pgbackrest: pgBackRestLine(config, "archive-push %p"),
  };
  const archiveCommand = (first: "pgha" | "pgbackrest") =>
    first === "pgha"
      ? `${pushes.pgha} && ${pushes.pgbackrest}`
      : `${pushes.pgbackrest} && ${pushes.pgha}`;
  const archiveFirst = async (first: "pgha" | "pgbackrest") => {
    const sql = `'${archiveCommand(first).replace(/'/g, "''")}'`;
    await cluster.sql(`ALTER SYSTEM SET archive_command = ${sql}`);
    await cluster.sql("SELECT pg_reload_conf()");
    // The archiver rereads its configuration at the top of its loop.
    await sleep(500);
  };
  await cluster.appendConf([`archive_command = ${confString(archiveCommand("pgha"))}`]);
  await cluster.start();
  await pgBackRest(config, ["stanza-create"]);
  const databaseBytes = Number(
    await cluster.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"),
  );
  await cluster.sql("SELECT pg_switch_wal()");
  await archiverIdle(cluster.dataDir);

  // Peak RSS two ways: the largest process, and the whole process tree (sampled).
  const measuredTree = (command: Command, dir: string) =>
    measured(command, dir, { sampleTree: true });
  const pghaRun = (args: string[], env: Record<string, string>): Command => ({
    file: process.execPath,
    args: [PGHA_ENTRY, ...args],
    env: { ...process.env, ...pghaEnv, ...env },
  });
  const variants: BackupVariant[] = [
    ...pghaVariants.map(
      (v): BackupVariant => ({
        id: v.id,
        label: v.label,
        family: "pgha",
        jobs: v.jobs,
        async backup(dir) {
          const run = await measuredTree(
            pghaRun(["backup", "--fast", ...(v.backupArgs ?? [])], v.env ?? {}),
            dir,
          );
          const id = run.stdout.trim();
          const info = await measuredTree(
            pghaRun(["backup", "info", id, "--json"], v.env ?? {}),
            dir,
          );
          const manifest = JSON.parse(info.stdout) as { storedBytes: number };
          // Backup ids have a resolution of one second.
          await sleep(1000);
          return { run, id, storedBytes: manifest.storedBytes };
        },
        restore: (id, into, dir) =>
          measuredTree(
            pghaRun(
              ["restore", "run", "--pgdata", into, "--backup", id, ...(v.restoreArgs ?? [])],
              v.env ?? {},
            ),
            dir,
          ),
      }),
    ),
    ...jobsList.map(
      (jobs): BackupVariant => ({
        id: `pgbackrest-p${jobs}`,
        label: `pgBackRest process-max ${jobs}`,
        family: "pgbackrest",
        jobs,
        async backup(dir) {
          const run = await measuredTree(
            {
              file: "pgbackrest",
              args: [
                `--config=${config}`,
                "--stanza=bench",
                `--process-max=${jobs}`,
                "--type=full",
                "backup",
              ],
            },
            dir,
          );
          const info = JSON.parse(await pgBackRest(config, ["--output=json", "info"])) as {
            backup: { label: string; info: { repository: { delta: number } } }[];
          }[];
          const last = info[0]?.backup.at(-1);
          if (!last) throw new Error("pgbackrest info lists no backup");
          return { run, id: last.label, storedBytes: last.info.repository.delta };
        },
        restore: (id, into, dir) =>
          measuredTree(
            {
              file: "pgbackrest",
              args: [
                `--config=${config}`,
                "--stanza=bench",
                `--process-max=${jobs}`,
                `--pg1-path=${into}`,
                `--set=${id}`,
                "restore",
              ],
            },
            dir,
          ),
      }),
    ),
  ];

  const backups = await interleaveRounds(variants, rounds, async (v, round) => {
    await archiverIdle(cluster.dataDir);
    await archiveFirst(v.family);
    await syncAll();
    const { run, id, storedBytes } = await v.backup(scratch);
    log(
      `backup round ${round + 1} ${v.label}: ${(run.wallMs / 1000).toFixed(2)} s, ${(storedBytes / 1e6).toFixed(1)} MB stored, peak RSS ${(run.maxRssKb / 1024).toFixed(0)} MB (tree ${(run.treeRssKb / 1024).toFixed(0)} MB)`,
    );
    return {
      id,
      wallMs: Math.round(run.wallMs),
      maxRssKb: run.maxRssKb,
      treeRssKb: run.treeRssKb,
      storedBytes,
    };
  });
  await cluster.stop("fast");
  const restores = await interleaveRounds(variants, rounds, async (v, round) => {
    const into = await serverMkdir(join(scratch, `restore-${v.id}-${round}`));
    await syncAll();
    const run = await v.restore(backups.get(v)?.at(-1)?.id ?? "latest", into, scratch);
    const version = await readFile(join(into, "PG_VERSION"), "utf8").catch(() => "");
    if (!version.trim()) throw new Error(`${v.label} restore left no PG_VERSION in ${into}`);
    await rm(into, { recursive: true, force: true });
    log(
      `restore round ${round + 1} ${v.label}: ${(run.wallMs / 1000).toFixed(2)} s, peak RSS ${(run.maxRssKb / 1024).toFixed(0)} MB (tree ${(run.treeRssKb / 1024).toFixed(0)} MB)`,
    );
    return { wallMs: Math.round(run.wallMs), maxRssKb: run.maxRssKb, treeRssKb: run.treeRssKb };
  });

  const rows = variants.map((v): BackupRow => {
    // The backup's id is not reported.
    const b = (backups.get(v) ?? []).map(({ id: _, ...backup }) => backup);
    const r = restores.get(v) ?? [];
    const all = [...b, ...r];
    return {
      id: v.id,
      label: v.label,
      family: v.family,
      jobs: v.jobs,
      backups: b,
      restores: r,
      backupMs: medianOf(b.map((x) => x.wallMs)),
      restoreMs: medianOf(r.map((x) => x.wallMs)),
      storedBytes: medianOf(b.map((x) => x.storedBytes)),
      peakRssMb: Math.max(...all.map((x) => x.maxRssKb)) / 1024,
      peakTreeRssMb: Math.max(...all.map((x) => x.treeRssKb)) / 1024,
      backupVsPgbr: null,
      restoreVsPgbr: null,
    };
  });
  for (const row of rows) {
    const peer = rows.find((p) => p.family === "pgbackrest" && p.jobs === row.jobs);
    row.backupVsPgbr = ratio(row.backupMs, peer?.backupMs);
    row.restoreVsPgbr = ratio(row.restoreMs, peer?.restoreMs);
  }
  return { rows, databaseBytes };
}

export function renderBackup(rows: BackupRow[], scale: number, databaseBytes: number): string {
  const header = [
    "tool",
    "jobs",
    "backup s",
    "stored MB",
    "restore s",
    "peak RSS MB",
    "tree RSS MB",
    "backup x pgbr",
    "restore x pgbr",
  ];
  const body = rows.map((r) => [
    r.label,
    String(r.jobs),
    fixed(r.backupMs / 1000, 2),
    fixed(r.storedBytes / 1e6, 1),
    fixed(r.restoreMs / 1000, 2),
    fixed(r.peakRssMb, 0),
    fixed(r.peakTreeRssMb, 0),
    fixed(r.backupVsPgbr, 2, "x"),
    fixed(r.restoreVsPgbr, 2, "x"),
  ]);
  return [
    `base backup and full restore: pgbench scale ${scale} (${(databaseBytes / 1e6).toFixed(0)} MB of databases), S3 loopback, medians`,
    renderTable(header, body),
    "x pgbr = against pgBackRest with the same job count (process-max); peak RSS = largest process, tree = sum over the process tree (sampled)",
  ].join("\n");
}
