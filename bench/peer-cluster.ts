/**
 * The material every section shares, made once from one pgbench cluster (the "bench
 * cluster"): a plain base backup, the N real 16 MiB segments that follow it (so that the
 * recovery section replays exactly them), and a data-directory stand-in ("stage") in which
 * archive and restore commands run as PostgreSQL would run them.
 */
import { createHash } from "node:crypto";
import {
  chown,
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { PgCluster, serverOwnedTempDir, serverUser } from "../test/helpers/pg-cluster.js";
import { log, onCleanup, requirePostgres, sleep } from "./common.js";

export const SEGMENT_SIZE = 16 * 1024 * 1024;

export interface BenchMaterial {
  /** The bench cluster (stopped): the backup section starts it again. */
  cluster: PgCluster;
  pgVersion: string;
  /** Server-owned scratch directory of the whole run. */
  scratch: string;
  /** Holds exactly the N segments (files named as the segments). */
  segmentDir: string;
  segments: string[];
  /** sha1 of each segment, to check what a restore command delivers. */
  digests: Map<string, string>;
  /** pg_basebackup -Fp -X none taken just before the first segment. */
  baseDir: string;
}

/** chown to the server user (when we are root). */
export async function giveToServer(path: string): Promise<void> {
  const user = serverUser();
  if (user) await chown(path, user.uid, user.gid);
}

export async function serverMkdir(path: string): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await giveToServer(path);
  return path;
}

/** A value for postgresql.conf: single-quoted, quotes doubled. */
export function confString(text: string): string {
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

function segmentNumber(name: string): bigint {
  return BigInt(`0x${name.slice(8)}`);
}

function nextSegment(name: string): string {
  // 16 MiB segments: 256 per "log" file number.
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16)}`);
  const [nextLog, nextSeg] = seg === 0xffn ? [log + 1n, 0n] : [log, seg + 1n];
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, "0");
  return `${name.slice(0, 8)}${hex(nextLog)}${hex(nextSeg)}`;
}

async function waitArchived(dir: string, names: string[], timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const have = new Set(await readdir(dir));
    const missing = names.filter((name) => !have.has(name));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`not archived after ${timeoutMs} ms: ${missing[0]}`);
    await sleep(200);
  }
}

export async function makeMaterial(count: number, scale: number): Promise<BenchMaterial> {
  requirePostgres();
  const scratch = await serverOwnedTempDir("pgha-bench-peers-");
  onCleanup(scratch, () => rm(scratch, { recursive: true, force: true }));
  const archiveDir = await serverMkdir(join(scratch, "archive"));
  const cluster = await PgCluster.init({
    conf: [
      "archive_mode = on",
      `archive_command = ${confString(`cp %p ${archiveDir}/%f`)}`,
      "max_wal_size = '4GB'",
      "checkpoint_timeout = '30min'",
    ],
  });
  onCleanup("bench cluster", () => cluster.destroy());
  await cluster.start();
  const pgVersion = await cluster.sql("SHOW server_version");
  const started = Date.now();

  // The base backup the recovery section starts from, of the still empty cluster: the
  // segments begin at its start and hold what follows, as bench/wal.ts's do: pgbench -i
  // (COPY, index builds), then pgbench runs after a checkpoint (full-page images).
  const baseDir = join(scratch, "base");
  await cluster.bin("pg_basebackup", [
    ...cluster.connArgs(),
    "-D",
    baseDir,
    "-Fp",
    "-X",
    "none",
    "-c",
    "fast",
    "--no-sync",
  ]);
  const label = await readFile(join(baseDir, "backup_label"), "utf8");
  const first = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(label)?.[1];
  if (!first) throw new Error(`no start segment in backup_label:\n${label}`);
  const segments = [first];
  while (segments.length < count) segments.push(nextSegment(segments[segments.length - 1] ?? ""));
  const last = segments[segments.length - 1] ?? first;

  log(`bench cluster: PostgreSQL ${pgVersion}, pgbench -i -s ${scale}`);
  await cluster.pgbench(["-i", "-s", String(scale), "-q"]);
  await cluster.sql("CHECKPOINT");
  // pgbench until the server writes past the last segment: then all N are complete (none
  // ends in a switch but the backup's own), and a switch pushes the current one out.
  for (let round = 0; ; round++) {
    const current = await cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    if (segmentNumber(current) > segmentNumber(last)) break;
    if (round >= 100) throw new Error(`WAL reached only ${current} after ${round} pgbench runs`);
    log(`WAL at ${current}, want past ${last}: pgbench -T 10`);
    await cluster.pgbench(["-T", "10", "-c", "2", "-j", "2"]);
  }
  await cluster.sql("SELECT pg_switch_wal()");
  await waitArchived(archiveDir, segments);
  await cluster.stop("fast");

  const segmentDir = await serverMkdir(join(scratch, "segments"));
  const digests = new Map<string, string>();
  for (const name of segments) {
    const path = join(segmentDir, name);
    await copyFile(join(archiveDir, name), path);
    await giveToServer(path);
    const { size } = await stat(path);
    if (size !== SEGMENT_SIZE) throw new Error(`${name} is ${size} bytes, not ${SEGMENT_SIZE}`);
    digests.set(
      name,
      createHash("sha1")
        .update(await readFile(path))
        .digest("hex"),
    );
  }
  await giveToServer(segmentDir);
  await rm(archiveDir, { recursive: true, force: true });
  log(
    `${segments.length} segments ${first} .. ${last} after a base backup (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  return { cluster, pgVersion, scratch, segmentDir, segments, digests, baseDir };
}

/**
 * A data directory stand-in owned by the server user: PG_VERSION, global/pg_control (what
 * pgBackRest reads from pg1-path) and pg_wal/archive_status.
 */
export async function makeStage(material: BenchMaterial, name: string): Promise<string> {
  const stage = await serverMkdir(join(material.scratch, name));
  await serverMkdir(join(stage, "global"));
  await serverMkdir(join(stage, "pg_wal", "archive_status"));
  await giveToServer(join(stage, "pg_wal"));
  for (const file of ["PG_VERSION", "global/pg_control"]) {
    await copyFile(join(material.baseDir, file), join(stage, file));
    await giveToServer(join(stage, file));
  }
  return stage;
}

/** Empties the stage's pg_wal (and archive_status). */
async function clearStage(stage: string): Promise<void> {
  for (const dir of [join(stage, "pg_wal"), join(stage, "pg_wal", "archive_status")]) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isFile()) await rm(join(dir, entry.name), { force: true });
    }
  }
}

/**
 * Puts the segments into the stage's pg_wal with a .ready file each, as the server leaves
 * them when its archiver is behind (hard links: nothing is copied).
 */
export async function queueSegments(
  stage: string,
  material: BenchMaterial,
  names: string[],
): Promise<void> {
  await clearStage(stage);
  for (const name of names) {
    await link(join(material.segmentDir, name), join(stage, "pg_wal", name));
    const ready = join(stage, "pg_wal", "archive_status", `${name}.ready`);
    await writeFile(ready, "");
    await giveToServer(ready);
  }
}
