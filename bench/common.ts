/**
 * Shared by the benchmarks (bench/*.ts): logging, a cleanup stack that runs at the end,
 * on failure and on Ctrl-C, timed child processes, the pgha environment, statistics and
 * the main-function runner.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

// ---------------------------------------------------------------------------------------
// Cleanup: a stack of undo actions, run once (in reverse) at the end, on failure or on a
// signal.

const undo: { what: string; run: () => Promise<unknown> }[] = [];
let cleaning: Promise<void> | undefined;

export function onCleanup(what: string, run: () => Promise<unknown>): void {
  if (cleaning) {
    // Created while (or after) cleaning up on a signal: undo it at once.
    void run().catch(() => undefined);
    return;
  }
  undo.push({ what, run });
}

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (let item = undo.pop(); item; item = undo.pop()) {
      try {
        await item.run();
      } catch (error) {
        log(`cleanup of ${item.what} failed: ${(error as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** A temp directory removed at cleanup. */
export async function tempDir(prefix: string, mode = 0o700): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, mode);
  onCleanup(dir, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs `main` with the cleanup stack: cleans up at the end, on failure (exit 1) and on
 * SIGINT/SIGTERM (exit 130). Never returns.
 */
export async function runBench(main: () => Promise<void>): Promise<never> {
  let interrupted = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      interrupted = true;
      log(`${signal}: cleaning up`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  let exitCode = 0;
  try {
    await main();
  } catch (error) {
    // After a signal, main fails because its cluster or server went away: let the signal
    // handler exit once the cleanup is done.
    if (interrupted) await cleanupAll();
    log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    exitCode = 1;
  }
  await cleanupAll();
  process.exit(exitCode);
}

// ---------------------------------------------------------------------------------------
// Processes

export interface Command {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/** Runs one process to completion and returns its wall time in ms; throws on failure. */
export function timed(command: Command): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command.file, command.args, {
      env: command.env ?? process.env,
      ...(command.cwd ? { cwd: command.cwd } : {}),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code === 0) resolve(ms);
      else {
        const line = [command.file, ...command.args].join(" ");
        reject(new Error(`${line} exited ${code ?? signal}: ${stderr.trim()}`));
      }
    });
  });
}

/** The environment without the caller's PGHA_* settings, plus `extra`. */
export function pghaEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PGHA_")) env[key] = value;
  }
  return { ...env, ...extra };
}

/** A global `sync`, so that dirty pages are not flushed on the next measurement's clock. */
export function syncAll(): Promise<number> {
  return timed({ file: "sync", args: [] });
}

export function toolVersion(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: "utf8" }).trim().split("\n")[0] ?? "";
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------
// CPU time

/** Clock ticks per second, the unit of /proc CPU times. */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Busy CPU time (ms) of the whole machine so far, from /proc/stat; undefined without /proc. */
export function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
      .trim()
      .split(/\s+/)
      .map(Number);
    return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Statistics

export function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}
