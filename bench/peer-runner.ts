/**
 * Runs archive and restore commands the way PostgreSQL does: through `sh -c`, as the
 * server user, in the data directory, with %p relative to it; one process per segment,
 * in order. The archiver loop renames .ready to .done after each success, as the
 * server's archiver does.
 */
import { createHash } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stopBackgroundProcesses } from "../test/helpers/pg-cluster.js";
import { type Finished, runProcess, sleep } from "./common.js";
import { type BenchMaterial, queueSegments } from "./peer-cluster.js";
import type { ToolRun } from "./peer-tools.js";

/** PostgreSQL's substitution in archive_command / restore_command. */
export function expandCommand(template: string, values: { p: string; f: string }): string {
  return template.replace(/%([pf%])/g, (_, key: string) =>
    key === "p" ? values.p : key === "f" ? values.f : "%",
  );
}

export function runAsServer(line: string, cwd: string): Promise<Finished> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PGHA_") && !key.startsWith("PGBACKREST_")) env[key] = value;
  }
  return runProcess({ file: "/bin/sh", args: ["-c", line], env, cwd, asServerUser: true });
}

export interface ArchiveRun {
  /** Wall time of each archive_command, in order. */
  samplesMs: number[];
  /** From the first command's start to the last one's return. */
  returnedMs: number;
  /** From the first command's start until the repository held every segment. */
  storedMs: number;
  storedBytes: number;
}

/**
 * Archives `names` (queued with .ready files) through `run`; then waits until the
 * repository lists every one of them (an asynchronous tool may acknowledge earlier).
 */
export async function archiveSegments(
  stage: string,
  material: BenchMaterial,
  names: string[],
  run: ToolRun,
): Promise<ArchiveRun> {
  await queueSegments(stage, material, names);
  const samplesMs: number[] = [];
  const start = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - start) / 1e6;
  for (const name of names) {
    const line = expandCommand(run.archiveCommand, { p: `pg_wal/${name}`, f: name });
    const done = await runAsServer(line, stage);
    if (done.code !== 0) {
      throw new Error(`archive_command for ${name} exited ${done.code}: ${done.stderr.trim()}`);
    }
    samplesMs.push(done.ms);
    const status = join(stage, "pg_wal", "archive_status");
    await rename(join(status, `${name}.ready`), join(status, `${name}.done`));
  }
  const returnedMs = since();
  const deadline = Date.now() + 300_000;
  let stored = await run.stored();
  while (names.some((name) => !stored.has(name))) {
    if (Date.now() > deadline) {
      const missing = names.filter((name) => !stored.has(name));
      throw new Error(
        `${missing.length} acknowledged segments not in the repository, e.g. ${missing[0]}`,
      );
    }
    await sleep(50);
    stored = await run.stored();
  }
  const storedMs = Math.max(returnedMs, since());
  // Each run starts cold: an archiver of this run does not help the next one.
  await stopBackgroundProcesses(stage);
  let storedBytes = 0;
  for (const name of names) storedBytes += stored.get(name) ?? 0;
  return { samplesMs, returnedMs, storedMs, storedBytes };
}

export interface RestoreRun {
  /** Wall time of each restore_command, in order. */
  samplesMs: number[];
}

/**
 * Fetches `names` in order, each into pg_wal/RECOVERYXLOG as the server asks during
 * recovery; checks each delivered file against the original (outside the timed command,
 * about where the server would replay it).
 */
export async function restoreSegments(
  stage: string,
  material: BenchMaterial,
  names: string[],
  run: ToolRun,
): Promise<RestoreRun> {
  const samplesMs: number[] = [];
  const target = join(stage, "pg_wal", "RECOVERYXLOG");
  // A server in archive recovery has recovery.signal (pgha prefetches only then).
  const signal = join(stage, "recovery.signal");
  await writeFile(signal, "", { mode: 0o644 });
  try {
    await restoreEach();
  } finally {
    await rm(signal, { force: true });
    // Each run starts cold: a prefetcher of this run does not help the next one.
    await stopBackgroundProcesses(stage);
  }
  return { samplesMs };

  async function restoreEach(): Promise<void> {
    for (const name of names) {
      const line = expandCommand(run.restoreCommand, { p: "pg_wal/RECOVERYXLOG", f: name });
      const done = await runAsServer(line, stage);
      if (done.code !== 0) {
        throw new Error(`restore_command for ${name} exited ${done.code}: ${done.stderr.trim()}`);
      }
      samplesMs.push(done.ms);
      const digest = createHash("sha1")
        .update(await readFile(target))
        .digest("hex");
      if (digest !== material.digests.get(name))
        throw new Error(`restored ${name} differs from the original`);
      await rm(target);
    }
  }
}
