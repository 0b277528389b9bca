/**
 * Issue 14's targets, on a pgbench cluster of BENCH_INCR_SCALE (default 70, about 1 GB;
 * smaller for a quick run), after updating BENCH_INCR_UPDATE_PCT (default 1) percent of
 * pgbench_accounts' rows at random between backups:
 *
 *   1. `pgha backup --fast --type incr` stores <= 5% of the full's bytes and takes <= 35%
 *      of its time;
 *   2. `pgha restore --delta` of a data directory one incremental old (a restore of the
 *      full) takes <= 25% of a restore into an empty directory of the same backup;
 *   3. a restore of full + 6 incrementals takes <= 1.3x the restore of a full of the same
 *      data (a `--type full` taken right after the 6th incremental).
 *
 * BENCH_INCR_WHOLE sets --backup-incr-whole (default: pgha's, 50): the share of changed blocks
 * from which an increment stores a relation file whole (100: only when all changed).
 *
 * Written against the CLI of the format contract (`backup --type full|incr`, `restore
 * --delta`). Every run is timed under /usr/bin/time after the archiver is idle and a
 * global sync; restores go into new directories removed afterwards. One run of each (the
 * chain cannot be taken twice without changing it).
 *
 * Why 1% of the rows is far more than 1% of the pages: pgbench's tables have fillfactor
 * 100, so an UPDATE finds no room on its page: the new row version goes to another page
 * (not HOT), the old page changes too (xmax, later pruning), and the primary key gets a
 * new index entry. With about 61 rows per heap page, 1% of rows at random touch
 * 1 - 0.99^61 = 46% of the heap pages and nearly every index leaf. The report prints
 * the fraction of blocks the incremental stored, measured from its manifest.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { resolveConfig } from "../src/config/load.js";
import { memoryLogger } from "../src/log.js";
import { readBackupManifest } from "../src/repository/backup-manifest.js";
import { openStore } from "../src/storage/open-store.js";
import { REPO_ROOT } from "../test/helpers/pgha.js";
import { archiverIdle, archivingCluster, backupSizes } from "./bench-cluster.js";
import { fixed, log, measured, pghaEnv, renderTable, syncAll } from "./common.js";
import { type PeerBackupRun, setUpPgBackRestIncremental } from "./peer-incr.js";

const SCALE = Number(process.env.BENCH_INCR_SCALE ?? 70);
const UPDATE_PCT = Number(process.env.BENCH_INCR_UPDATE_PCT ?? 1);
const INCREMENTS = 6;
/** Restores compared are run this many times, interleaved; their medians are compared. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_INCR_ROUNDS ?? 3));
/** --backup-incr-whole for the increments (unset: pgha's default). */
const WHOLE = process.env.BENCH_INCR_WHOLE;
const ORDINALS = ["1st", "2nd", "3rd", "4th", "5th", "6th"];
const MB = 1e6;
/** The launcher users run (it execs node with pgha's V8 settings). */
const LAUNCHER = join(REPO_ROOT, "bin", "pgha");

const TARGETS = {
  incrStoredRatio: 0.05,
  incrTimeRatio: 0.35,
  deltaRestoreRatio: 0.25,
  chainRestoreRatio: 1.3,
};

interface Timed {
  wallMs: number;
  /** User + system CPU time of the process (its job threads included). */
  cpuMs: number;
  peakRssMb: number;
}

interface BackupRun extends Timed {
  id: string;
  type: string;
  rawBytes: number;
  storedBytes: number;
  /** Blocks of block-mapped files this backup's bundles hold, and all of them. */
  blocksStored: number | null;
  blocksTotal: number | null;
  /** Relation files an increment stored whole (--backup-incr-whole), of those it stored. */
  wholeFiles: number;
  storedFiles: number;
}

interface Manifest {
  type?: string;
  rawBytes: number;
  storedBytes: number;
  files?: { path: string; stored?: string; blocks?: { from: string } }[];
  chain?: string[];
}

/** The run of median wall time (its CPU and memory with it). */
function median(runs: Timed[]): Timed {
  const sorted = [...runs].sort((a, b) => a.wallMs - b.wallMs);
  return sorted[Math.floor((sorted.length - 1) / 2)] as Timed;
}

/** Blocks this backup stored (index `chain.length` in each map's `from`), of all blocks. */
function blockCounts(m: Manifest): { stored: number; total: number } | null {
  const own = m.chain?.length ?? 0;
  let stored = 0;
  let total = 0;
  let mapped = false;
  for (const f of m.files ?? []) {
    if (!f.blocks) continue;
    mapped = true;
    for (const index of Buffer.from(f.blocks.from, "base64")) {
      total++;
      if (index === own) stored++;
    }
  }
  return mapped ? { stored, total } : null;
}

export async function benchIncremental(): Promise<{ report: unknown; text: string }> {
  const began = Date.now();
  const { scratch, repoEnv, cluster } = await archivingCluster("incr", {
    env: WHOLE ? { PGHA_BACKUP_INCR_WHOLE: WHOLE } : {},
    conf: ["max_wal_size = '4GB'"],
  });
  log(`incremental: pgbench -i -s ${SCALE}`);
  await cluster.pgbench(["-i", "-s", String(SCALE), "-q"]);
  await cluster.sql("CHECKPOINT");
  await archiverIdle(cluster);
  const databaseBytes = Number(
    await cluster.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"),
  );
  const env = { ...repoEnv, ...cluster.connEnv() };
  const config = resolveConfig({ flags: {}, env, file: undefined });
  const store = await openStore(config, memoryLogger());
  const rows = SCALE * 100_000;
  // The peer, with as many processes as pgha has jobs (peer-incr.ts).
  const peer = await setUpPgBackRestIncremental(cluster, config.parallel, scratch);
  if ("skipped" in peer) log(`incremental: no pgBackRest rows: ${peer.skipped}`);
  const peerBackup = async (type: "full" | "incr"): Promise<PeerBackupRun | undefined> => {
    if ("skipped" in peer) return undefined;
    await archiverIdle(cluster);
    await syncAll();
    const out = await peer.backup(type);
    log(
      `pgbackrest backup --type=${type}: ${(out.wallMs / 1000).toFixed(1)} s (CPU ${(out.cpuMs / 1000).toFixed(1)} s), ${(out.storedBytes / MB).toFixed(1)} MB stored`,
    );
    return out;
  };

  const backup = async (type: "full" | "incr" | "diff"): Promise<BackupRun> => {
    await archiverIdle(cluster);
    await syncAll();
    const run = await measured(
      {
        file: LAUNCHER,
        args: ["backup", "--fast", "--type", type],
        env: pghaEnv(env),
      },
      scratch,
    );
    const id = run.stdout.trim();
    // The manifest itself (backup info --json counts the files, it does not list them).
    const m = (await readBackupManifest(store, "incr", id)) as unknown as Manifest;
    const sizes = await backupSizes(env, id);
    const blocks = blockCounts(m);
    const mappedStored = (m.files ?? []).filter((f) => f.blocks && f.stored !== "none");
    // An increment says "whole" only of a file it stored whole for its changed blocks (new
    // files have no `stored`).
    const wholeFiles = mappedStored.filter((f) => f.stored === "whole").length;
    await new Promise((r) => setTimeout(r, 1000)); // ids have a resolution of one second
    const out: BackupRun = {
      id,
      type: m.type ?? "full",
      wallMs: run.wallMs,
      cpuMs: run.cpuMs,
      peakRssMb: run.maxRssKb / 1024,
      rawBytes: sizes.rawBytes,
      storedBytes: sizes.storedBytes,
      blocksStored: blocks?.stored ?? null,
      blocksTotal: blocks?.total ?? null,
      wholeFiles,
      storedFiles: mappedStored.length,
    };
    log(
      `backup --type ${type} -> ${out.type} ${id}: ${(out.wallMs / 1000).toFixed(1)} s (CPU ${(out.cpuMs / 1000).toFixed(1)} s), ${(out.storedBytes / MB).toFixed(1)} MB stored${blocks ? `, ${blocks.stored}/${blocks.total} blocks` : ""}${out.type === "incr" ? `, ${wholeFiles} of ${mappedStored.length} relation files stored whole` : ""}`,
    );
    return out;
  };
  const updatedRows: number[] = [];
  const updateRows = async () => {
    // Each row with probability UPDATE_PCT %, independently: about that share of rows.
    const count = await cluster.sql(
      `WITH u AS (UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid IN (SELECT aid FROM pgbench_accounts TABLESAMPLE BERNOULLI (${UPDATE_PCT})) RETURNING 1) SELECT count(*) FROM u`,
    );
    updatedRows.push(Number(count));
    await cluster.sql("CHECKPOINT");
  };
  const restore = async (id: string, dir?: string, delta = false): Promise<Timed> => {
    const target = dir ?? join(scratch, `restore-${randomBytes(4).toString("hex")}`);
    await syncAll();
    const run = await measured(
      {
        file: LAUNCHER,
        args: ["restore", "--pgdata", target, "--backup", id, ...(delta ? ["--delta"] : [])],
        env: pghaEnv(env),
      },
      scratch,
    );
    if (dir === undefined) await rm(target, { recursive: true, force: true });
    log(`restore ${delta ? "--delta " : ""}${id}: ${(run.wallMs / 1000).toFixed(1)} s`);
    return { wallMs: run.wallMs, cpuMs: run.cpuMs, peakRssMb: run.maxRssKb / 1024 };
  };

  const full = await backup("full");
  const peerFull = await peerBackup("full");
  await updateRows();
  const incr1 = await backup("incr");
  const peerIncr = await peerBackup("incr");

  // A data directory one incremental old: the full, restored; then --delta to incr1.
  // Interleaved with a clean restore of incr1, ROUNDS times: the medians are compared.
  const deltas: Timed[] = [];
  const cleans: Timed[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const old = join(scratch, "one-incr-old");
    await restore(full.id, old);
    deltas.push(await restore(incr1.id, old, true));
    await rm(old, { recursive: true, force: true });
    cleans.push(await restore(incr1.id));
  }
  const delta = median(deltas);
  const clean = median(cleans);

  const chain: BackupRun[] = [incr1];
  for (let i = 2; i <= INCREMENTS; i++) {
    await updateRows();
    chain.push(await backup("incr"));
  }
  const last = chain.at(-1) as BackupRun;
  // The same data as a differential of the first full (every round's changes), then a full.
  const diff = await backup("diff");
  const sameData = await backup("full");
  const chainRestores: Timed[] = [];
  const diffRestores: Timed[] = [];
  const fullRestores: Timed[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    chainRestores.push(await restore(last.id));
    diffRestores.push(await restore(diff.id));
    fullRestores.push(await restore(sameData.id));
  }
  const chainRestore = median(chainRestores);
  const diffRestore = median(diffRestores);
  const fullRestore = median(fullRestores);
  await cluster.destroy();

  const ratios = {
    incrStored: incr1.storedBytes / full.storedBytes,
    incrTime: incr1.wallMs / full.wallMs,
    deltaRestore: delta.wallMs / clean.wallMs,
    chainRestore: chainRestore.wallMs / fullRestore.wallMs,
  };
  const pass = {
    incrStored: ratios.incrStored <= TARGETS.incrStoredRatio,
    incrTime: ratios.incrTime <= TARGETS.incrTimeRatio,
    deltaRestore: ratios.deltaRestore <= TARGETS.deltaRestoreRatio,
    chainRestore: ratios.chainRestore <= TARGETS.chainRestoreRatio,
  };
  const blockShare =
    incr1.blocksStored !== null && incr1.blocksTotal
      ? incr1.blocksStored / incr1.blocksTotal
      : null;
  const report = {
    scale: SCALE,
    databaseBytes,
    updatePct: UPDATE_PCT,
    rows,
    rowsUpdated: updatedRows,
    durationSec: Math.round((Date.now() - began) / 1000),
    backups: { full, chain, diff, sameData },
    rounds: ROUNDS,
    restores: { delta, clean, chainRestore, diffRestore, fullRestore },
    restoreRounds: { deltas, cleans, chainRestores, diffRestores, fullRestores },
    pgbackrest:
      "skipped" in peer
        ? { skipped: peer.skipped }
        : { version: peer.version, processMax: config.parallel, full: peerFull, incr: peerIncr },
    incrBlockShare: blockShare,
    ratios,
    targets: TARGETS,
    pass,
  };
  const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");
  const row = (name: string, r: Timed & Partial<BackupRun>) => [
    name,
    fixed(r.wallMs / 1000, 1),
    fixed(r.cpuMs / 1000, 1),
    r.storedBytes === undefined ? "" : fixed(r.storedBytes / MB, 1),
    r.blocksStored === undefined || r.blocksStored === null
      ? ""
      : `${r.blocksStored}/${r.blocksTotal}`,
    fixed(r.peakRssMb, 0),
  ];
  const text =
    `\nIncremental: pgbench scale ${SCALE} (${(databaseBytes / MB).toFixed(0)} MB of databases), ${UPDATE_PCT}% of pgbench_accounts' rows updated at random between backups; --backup-incr-whole ${WHOLE ?? "default (50)"}\n\n` +
    renderTable(
      ["run", "s", "CPU s", "stored MB", "blocks stored", "peak RSS MB"],
      [
        row("backup --type full", full),
        row(`backup --type incr (${ORDINALS[0]})`, incr1),
        ...chain.slice(1).map((b, i) => row(`backup --type incr (${ORDINALS[i + 1]})`, b)),
        row("backup --type diff (same data as the 6th incr)", diff),
        row("backup --type full (same data as the 6th incr)", sameData),
        ...(peerFull && peerIncr
          ? [
              row(`pgBackRest backup --type=full (process-max ${config.parallel})`, peerFull),
              row("pgBackRest backup --type=incr (after the 1st update)", peerIncr),
            ]
          : []),
        [`restores below: the median of ${ROUNDS} interleaved rounds`, "", "", "", "", ""],
        row("restore of the 1st incr, empty directory", clean),
        row("restore --delta of the 1st incr over the full's restore", delta),
        row("restore of full + 6 incrementals", chainRestore),
        row("restore of full + the differential", diffRestore),
        row("restore of a full of the same data", fullRestore),
      ],
    ) +
    `\n${verdict(pass.incrStored)}  incremental stored / full stored = ${ratios.incrStored.toFixed(3)} (target <= ${TARGETS.incrStoredRatio})` +
    (blockShare === null ? "" : `; it stored ${(blockShare * 100).toFixed(1)}% of the blocks`) +
    `\n${verdict(pass.incrTime)}  incremental time / full time = ${ratios.incrTime.toFixed(2)} (target <= ${TARGETS.incrTimeRatio}; CPU time ${(incr1.cpuMs / full.cpuMs).toFixed(2)})` +
    peerLine(peerFull, peerIncr, "skipped" in peer ? peer.skipped : undefined) +
    `\n${verdict(pass.deltaRestore)}  restore --delta (one incremental old) / restore into an empty directory = ${ratios.deltaRestore.toFixed(2)} (target <= ${TARGETS.deltaRestoreRatio})` +
    `\n${verdict(pass.chainRestore)}  restore of full + ${INCREMENTS} incrementals / restore of a full of the same data = ${ratios.chainRestore.toFixed(2)} (target <= ${TARGETS.chainRestoreRatio})` +
    `\n      a differential of the same data (every round's changes) against a full of it: stored ${(diff.storedBytes / sameData.storedBytes).toFixed(3)}, time ${(diff.wallMs / sameData.wallMs).toFixed(2)}, restore of the full before + it ${(diffRestore.wallMs / fullRestore.wallMs).toFixed(2)}\n`;
  return { report, text };
}

/** pgBackRest's incremental against its full: the same ratios as pgha's line above. */
function peerLine(
  full: PeerBackupRun | undefined,
  incr: PeerBackupRun | undefined,
  skipped: string | undefined,
): string {
  if (!full || !incr) return `\n      pgBackRest: no rows (${skipped ?? "not run"})`;
  return (
    `\n      pgBackRest (no block incremental: a changed file is stored whole): incremental stored / full stored = ${(incr.storedBytes / full.storedBytes).toFixed(3)}` +
    `, time = ${(incr.wallMs / full.wallMs).toFixed(2)} (CPU time ${(incr.cpuMs / full.cpuMs).toFixed(2)})`
  );
}
