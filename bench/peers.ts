import { join } from "node:path";
import { REPO_ROOT } from "../test/helpers/pgha.js";
import { log, machineFacts, runBench, toolVersion, writeBenchReport } from "./common.js";
import { renderArchive, runArchiveSection, type SectionPlan } from "./peer-archive.js";
import { PGHA_BACKUP_VARIANTS, renderBackup, runBackupSection } from "./peer-backup.js";
import { makeMaterial, makeStage } from "./peer-cluster.js";
import { KNOB_HELP, readKnobs } from "./peer-knobs.js";
import { renderLive, runLiveSection } from "./peer-live.js";
import { renderRecovery, runRecoverySection } from "./peer-recovery.js";
import { renderTargets } from "./peer-report.js";
import { ensureReadRepositories, renderRestore, runRestoreSection } from "./peer-restore.js";
import { type Endpoint, startBenchS3, startLatencyProxy } from "./peer-s3.js";
import { evaluateTargets, type PeerResults } from "./peer-targets.js";
import { allTools } from "./peer-tools.js";
import { ensurePgBackRest } from "./pgbackrest.js";

const OUT_FILE = join(REPO_ROOT, ".bench", "peers.json");

async function main(): Promise<void> {
  const began = Date.now();
  const knobs = readKnobs();
  // The tools must see only what each run gives them.
  for (const key of Object.keys(process.env)) {
    if (key.startsWith("PGHA_") || key.startsWith("PGBACKREST_")) delete process.env[key];
  }
  log(
    `sections: ${[...knobs.sections].join(", ")}; ${knobs.segments} segments; knobs:\n  ${KNOB_HELP.join("\n  ")}`,
  );
  const pgbackrest = await ensurePgBackRest();
  log(pgbackrest);

  const material = await makeMaterial(knobs.segments, knobs.scale);
  const s3 = await startBenchS3();
  const latency: Endpoint | undefined =
    knobs.latencyMs > 0 ? await startLatencyProxy(s3.loopback, knobs.latencyMs) : undefined;
  const tools = allTools({ s3, material });
  const stage = await makeStage(material, "stage");
  const plans: SectionPlan[] = [
    { endpoint: s3.loopback, rounds: knobs.rounds, segments: knobs.segments },
    ...(latency
      ? [{ endpoint: latency, rounds: knobs.latencyRounds, segments: knobs.latencySegments }]
      : []),
  ];

  const results: PeerResults = {};
  const tables: string[] = [];
  if (knobs.sections.has("archive")) {
    log("section archive");
    results.archive = await runArchiveSection(tools, plans, material, stage);
    tables.push(renderArchive(results.archive));
  }
  if (knobs.sections.has("restore") || knobs.sections.has("recovery")) {
    await ensureReadRepositories(tools, material, stage, s3.loopback);
  }
  if (knobs.sections.has("restore")) {
    log("section restore");
    results.restore = await runRestoreSection(tools, plans, material, stage);
    tables.push(renderRestore(results.restore));
  }
  if (knobs.sections.has("recovery")) {
    log("section recovery");
    results.recovery = await runRecoverySection(tools, knobs.recoveryRounds, material, s3.loopback);
    tables.push(renderRecovery(results.recovery, material.segments.length));
  }
  let backupInfo: { databaseBytes: number } | undefined;
  if (knobs.sections.has("backup")) {
    log("section backup");
    const { rows, databaseBytes } = await runBackupSection(
      material,
      s3,
      knobs.backupJobs,
      knobs.backupRounds,
      PGHA_BACKUP_VARIANTS,
    );
    results.backup = rows;
    backupInfo = { databaseBytes };
    tables.push(renderBackup(rows, knobs.scale, databaseBytes));
  }
  let liveRate: number | null = null;
  if (knobs.sections.has("live")) {
    log("section live");
    const { rows, rateTps } = await runLiveSection(
      tools,
      knobs.liveRounds,
      knobs.liveSeconds,
      knobs.liveWalMiBs,
      s3.loopback,
    );
    results.live = rows;
    liveRate = rateTps;
    tables.push(renderLive(rows, knobs.liveSeconds, knobs.liveWalMiBs, rateTps));
  }

  const targets = evaluateTargets(results, tools);
  const machine = machineFacts();
  const durationSec = Math.round((Date.now() - began) / 1000);
  const report = {
    date: new Date().toISOString(),
    durationSec,
    knobs: { ...knobs, sections: [...knobs.sections] },
    machine,
    postgres: material.pgVersion,
    pgbackrest,
    zstd: toolVersion("zstd", ["--version"]),
    s3: { kind: "s3rver (TLS)", latencyMs: knobs.latencyMs },
    segments: material.segments,
    backupDatabaseBytes: backupInfo?.databaseBytes ?? null,
    liveRateTps: liveRate,
    tools: tools.map((t) => ({
      id: t.id,
      label: t.label,
      family: t.family,
      asyncArchive: t.asyncArchive,
      prefetch: t.prefetch,
    })),
    notes: [
      "every section interleaves the tools round by round (each round starts with the next tool); medians over rounds",
      "segments: N consecutive 16 MiB segments from the start of a plain base backup of an empty cluster: pgbench -i, a CHECKPOINT, then pgbench -T 10 runs (the first segment is the backup's own and ends in a WAL switch)",
      "archive: the segments hard-linked into a stand-in data directory with a .ready file each; one `sh -c archive_command` per segment as the server user, cwd = the data directory, %p = pg_wal/NAME; .ready renamed to .done after each success; storedMs = until the repository lists every segment",
      "restore: one `sh -c restore_command` per segment in order, %p = pg_wal/RECOVERYXLOG; each delivered file is compared with the original (sha1) outside the timed command",
      "recovery: a copy of the base backup with recovery.signal and restore_command, timed from pg_ctl start to consistent (pg_ctl -w returns) and to promoted (the log says ready to accept connections); every segment must appear as restored",
      "backup: archive_command pushes with both tools (the measured tool first); backups start after the archiver is idle and a global sync; restores into an empty directory; peak RSS from /usr/bin/time (largest process) and from /proc (process tree, sampled every 100 ms)",
      "live: a fresh cluster per tool (fsync = off, as the test clusters), pgbench -c 2 -j 2 with a bulk INSERT script at a calibrated --rate; .ready/.done sampled every 200 ms; a .done is checked against a repository listing taken after it was seen",
      "pgha trusts the test server's certificate through --s3-ca-file (PGHA_S3_CA_FILE); pgBackRest through repo1-storage-ca-file",
    ],
    targets,
    results,
  };
  await writeBenchReport(OUT_FILE, report);

  process.stdout.write(
    `\npgha vs pgBackRest (${pgbackrest}), PostgreSQL ${material.pgVersion}, ${machine.cpus} CPUs, node ${process.version}, S3 = s3rver with TLS${latency ? `, +${knobs.latencyMs} ms rows through a proxy` : ""}\n\n` +
      `${tables.join("\n\n")}\n\nTargets\n${renderTargets(targets)}\n\n` +
      `run took ${Math.floor(durationSec / 60)} min ${durationSec % 60} s; written to ${OUT_FILE}\n`,
  );
}

await runBench(main);
