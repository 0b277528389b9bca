/**
 * Shared by the benchmarks (bench/*.ts): logging, a cleanup stack that runs at the end,
 * on failure and on Ctrl-C, timed child processes (also under /usr/bin/time), the pgha
 * environment, statistics, plain-text tables and the main-function runner.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import {
  collectOutput,
  PG_BIN,
  postgresAvailable,
  serverUser,
} from "../test/helpers/pg-cluster.js";

/** The machine a report was measured on. */
export function machineFacts() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    memoryMb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Writes a benchmark's JSON report (under .bench/, which git ignores). */
export async function writeBenchReport(file: string, report: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}

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
  /** Working directory (default: ours). */
  cwd?: string;
  /** Run as the PostgreSQL server user (postgres when we are root), as the server would. */
  asServerUser?: boolean;
}

export interface Finished {
  /** Wall time from spawn to exit. */
  ms: number;
  /** Exit code, or the signal's name. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/**
 * Runs one process to completion (never throws on a non-zero exit); `started` is told its
 * PID.
 */
export function runProcess(command: Command, started?: (pid: number) => void): Promise<Finished> {
  const user = command.asServerUser ? serverUser() : undefined;
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command.file, command.args, {
      env: command.env ?? process.env,
      cwd: command.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      ...(user ?? {}),
    });
    if (child.pid !== undefined) started?.(child.pid);
    const out = collectOutput(child);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      resolve({ ms, code: code ?? signal ?? -1, ...out });
    });
  });
}

/** Runs one process to completion and returns its wall time in ms; throws on failure. */
export async function timed(command: Command): Promise<number> {
  const done = await runProcess(command);
  if (done.code !== 0) throw exitError(command, done);
  return done.ms;
}

function exitError(command: Command, done: Finished): Error {
  const line = [command.file, ...command.args].join(" ");
  return new Error(`${line} exited ${done.code}: ${done.stderr.trim()}`);
}

export const TIME = "/usr/bin/time";

export interface MeasuredRun {
  wallMs: number;
  /** User + system CPU time of the process and its waited-for children. */
  cpuMs: number;
  /** Peak resident set of the process (of its largest process, for a pipeline). */
  maxRssKb: number;
  /** Largest sum over the process tree seen while sampling (0 when not sampled). */
  treeRssKb: number;
  /** CPU time the whole machine spent meanwhile (the server's side included). */
  machineCpuMs: number | null;
  stdout: string;
}

/**
 * Runs `command` as the server user under /usr/bin/time, in its cwd or else `scratch`
 * (which also takes /usr/bin/time's report); throws unless it exits 0. `sampleTree`: also
 * samples the resident set of its whole process tree every 100 ms (from /proc).
 */
export async function measured(
  command: Command,
  scratch: string,
  options: { sampleTree?: boolean } = {},
): Promise<MeasuredRun> {
  const timeFile = join(scratch, `time-${randomBytes(4).toString("hex")}`);
  let sampling = true;
  let treeMax = 0;
  const sampleTree = (pid: number) =>
    void (async () => {
      while (sampling) {
        treeMax = Math.max(treeMax, await treeRssKb(pid).catch(() => 0));
        await sleep(100);
      }
    })();
  const busyBefore = machineBusyMs();
  const done = await runProcess(
    {
      file: TIME,
      args: ["-f", "%e %U %S %M", "-o", timeFile, command.file, ...command.args],
      env: command.env,
      cwd: command.cwd ?? scratch,
      asServerUser: true,
    },
    options.sampleTree ? sampleTree : undefined,
  );
  sampling = false;
  const busyAfter = machineBusyMs();
  const report = await readFile(timeFile, "utf8").catch(() => "");
  await rm(timeFile, { force: true });
  if (done.code !== 0) throw exitError(command, done);
  const last = report.trim().split("\n").pop() ?? "";
  const [, userSec = "", systemSec = "", rss = ""] = last.split(" ");
  const maxRssKb = Number(rss);
  if (!Number.isFinite(maxRssKb) || rss === "") throw new Error(`cannot parse ${TIME}: ${report}`);
  return {
    wallMs: done.ms,
    cpuMs: (Number(userSec) + Number(systemSec)) * 1000,
    maxRssKb,
    // /usr/bin/time itself is in the tree: about 2 MB.
    treeRssKb: treeMax,
    machineCpuMs:
      busyBefore === undefined || busyAfter === undefined ? null : busyAfter - busyBefore,
    stdout: done.stdout,
  };
}

const PAGE_KB = 4;

/** Sum of resident pages (KB) of `root` and its descendants. */
async function treeRssKb(root: number): Promise<number> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[1]) parents.set(Number(entry), Number(fields[1]));
  }
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let total = 0;
  for (const pid of tree) {
    const statm = await readFile(`/proc/${pid}/statm`, "utf8").catch(() => "");
    total += Number(statm.split(" ")[1] ?? 0) * PAGE_KB;
  }
  return total;
}

/**
 * The environment without the caller's PGHA_* settings, plus `extra`; bin/pgha (the shell
 * launcher) runs this benchmark's node.
 */
export function pghaEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PGHA_")) env[key] = value;
  }
  return { ...env, PGHA_NODE: process.execPath, ...extra };
}

/** A global `sync`, so that dirty pages are not flushed on the next measurement's clock. */
export function syncAll(): Promise<number> {
  return timed({ file: "sync", args: [] });
}

/** Throws unless the PostgreSQL server binaries are there. */
export function requirePostgres(): void {
  if (!postgresAvailable()) {
    throw new Error(`PostgreSQL server binaries not found in ${PG_BIN} (set PGHA_TEST_PG_BIN)`);
  }
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

// ---------------------------------------------------------------------------------------
// Plain-text tables

/** `n` with `digits` decimals and `suffix`, or "-" when it is missing or not finite. */
export function fixed(n: number | null | undefined, digits: number, suffix = ""): string {
  return n === null || n === undefined || !Number.isFinite(n)
    ? "-"
    : `${n.toFixed(digits)}${suffix}`;
}

/**
 * A table's layout: a line of cells padded to the widest of each column, the `left`
 * columns (default: the first) left-aligned, the others right-aligned; and the rule under
 * the header.
 */
export function tableLayout(
  header: string[],
  rows: string[][],
  left: number[] = [0],
): { line(cells: string[]): string; rule: string } {
  const widths = header.map((h, c) =>
    Math.max(h.length, ...rows.map((row) => (row[c] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, c) =>
        left.includes(c) ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0),
      )
      .join("  ")
      .trimEnd();
  return { line, rule: widths.map((w) => "-".repeat(w)).join("  ") };
}

/** The header, its rule and the rows (see tableLayout). */
export function renderTable(header: string[], rows: string[][], left: number[] = [0]): string {
  const { line, rule } = tableLayout(header, rows, left);
  return [line(header), rule, ...rows.map(line)].join("\n");
}
