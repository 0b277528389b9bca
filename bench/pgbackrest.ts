/**
 * pgBackRest, the peer the benchmark compares pgha with: installed from Debian's packages
 * when missing (it is not a dependency of pgha), one configuration file per run (its own
 * repository path, lock and spool directories), stanza creation, and waiting for the
 * background processes its asynchronous mode leaves behind.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { log, runProcess, sleep } from "./common.js";
import type { BenchS3, Endpoint } from "./peer-s3.js";

export const STANZA = "bench";

function which(program: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

async function aptGet(args: string[]): Promise<{ ok: boolean; output: string }> {
  const done = await runProcess({
    file: "apt-get",
    args,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return { ok: done.code === 0, output: `${done.stdout}${done.stderr}`.trim() };
}

/** The pgbackrest binary, installed with apt-get first when it is missing; returns its version line. */
export async function ensurePgBackRest(): Promise<string> {
  if (!which("pgbackrest")) {
    log(
      "pgbackrest is missing: installing Debian's pgbackrest package with apt-get (not a dependency of pgha)",
    );
    if (process.getuid?.() !== 0) {
      throw new Error(
        "pgbackrest is missing and only root can install it (apt-get install pgbackrest)",
      );
    }
    const install = ["install", "-y", "--no-install-recommends", "pgbackrest"];
    let result = await aptGet(install);
    if (!result.ok) {
      log("apt-get install failed; running apt-get update and trying again");
      await aptGet(["update"]);
      result = await aptGet(install);
    }
    if (!result.ok) throw new Error(`apt-get install pgbackrest failed:\n${result.output}`);
    if (!which("pgbackrest")) throw new Error("pgbackrest still missing after apt-get install");
    log("pgbackrest installed");
  }
  return execFileSync("pgbackrest", ["version"], { encoding: "utf8" }).trim();
}

export interface PgBackRestSetup {
  /** A server-owned directory for this configuration's file, locks and spool. */
  dir: string;
  s3: BenchS3;
  endpoint: Endpoint;
  /** Repository path inside the bucket (no leading slash). */
  prefix: string;
  /** pg1-path: the data directory (only global/pg_control is read outside backups). */
  pgPath: string;
  /** Connection for backups and online checks. */
  pgSocketDir?: string;
  pgPort?: number;
  async: boolean;
  processMax: number;
}

/** Writes the configuration file; returns its path. */
export async function writePgBackRestConfig(setup: PgBackRestSetup): Promise<string> {
  const { server } = setup.s3;
  const lines = [
    "[global]",
    "repo1-type=s3",
    `repo1-path=/${setup.prefix}`,
    `repo1-s3-bucket=${server.bucket}`,
    `repo1-s3-endpoint=${setup.endpoint.host}`,
    `repo1-storage-port=${setup.endpoint.port}`,
    `repo1-s3-region=${server.region}`,
    `repo1-s3-key=${server.accessKeyId}`,
    `repo1-s3-key-secret=${server.secretAccessKey}`,
    "repo1-s3-uri-style=path",
    `repo1-storage-ca-file=${setup.s3.caFile}`,
    // The benchmark keeps every backup it takes (and pgBackRest warns when unset).
    "repo1-retention-full=999",
    // pgha's default is zstd:3.
    "compress-type=zst",
    "compress-level=3",
    "log-level-console=warn",
    "log-level-stderr=warn",
    "log-level-file=off",
    `lock-path=${join(setup.dir, "lock")}`,
    `spool-path=${join(setup.dir, "spool")}`,
    `archive-async=${setup.async ? "y" : "n"}`,
    `process-max=${setup.processMax}`,
    // Its default, written out: how much archive-get prefetches in asynchronous mode.
    "archive-get-queue-max=128MiB",
    "start-fast=y",
    "",
    `[${STANZA}]`,
    `pg1-path=${setup.pgPath}`,
    ...(setup.pgSocketDir ? [`pg1-socket-path=${setup.pgSocketDir}`] : []),
    ...(setup.pgPort ? [`pg1-port=${setup.pgPort}`] : []),
    "",
  ];
  const path = join(setup.dir, "pgbackrest.conf");
  await writeFile(path, lines.join("\n"), { mode: 0o644 });
  return path;
}

/** `pgbackrest --config=FILE --stanza=bench ARGS...` as one shell-ready command line. */
export function pgBackRestLine(config: string, args: string): string {
  return `pgbackrest --config=${config} --stanza=${STANZA} ${args}`;
}

/** Runs pgbackrest as the server user; throws with its output unless it exits 0. */
export async function pgBackRest(config: string, args: string[], cwd?: string): Promise<string> {
  const done = await runProcess({
    file: "pgbackrest",
    args: [`--config=${config}`, `--stanza=${STANZA}`, ...args],
    asServerUser: true,
    ...(cwd ? { cwd } : {}),
  });
  if (done.code !== 0) {
    throw new Error(
      `pgbackrest ${args.join(" ")} exited ${done.code}: ${done.stderr}${done.stdout}`,
    );
  }
  return done.stdout;
}

/** Creates the stanza from pg1-path's pg_control (the server need not run). */
export async function createStanza(config: string): Promise<void> {
  await pgBackRest(config, ["--no-online", "stanza-create"]);
}

/** Processes whose command line mentions `marker` (a run's own configuration path). */
async function processesMentioning(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

/**
 * Waits until no pgbackrest process of this configuration runs (the asynchronous pusher
 * or fetcher exits once it has nothing left to do); after `timeoutMs` stops those
 * processes (they are this run's own).
 */
export async function waitForBackground(config: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await processesMentioning(config);
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      log(
        `pgbackrest processes of ${config} still running after ${timeoutMs} ms: stopping ${pids.join(", ")}`,
      );
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // Already gone.
        }
      }
      return;
    }
    await sleep(50);
  }
}
