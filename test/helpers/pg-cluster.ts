/**
 * Throwaway PostgreSQL clusters for integration tests: initdb into a temp dir, a free
 * port, a private socket directory. PostgreSQL refuses to run as root, so when the tests
 * run as root every server binary runs as the `postgres` user, and the temp dir is
 * handed to that user. archive_command then runs as `postgres` too: everything it reads
 * (bin/pgha, dist/, node_modules, the config file) must be readable by that user.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopSpoolProcesses } from "../../src/wal/spool.js";

export const PG_BIN = process.env.PGHA_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

export function postgresAvailable(): boolean {
  return existsSync(join(PG_BIN, "postgres")) && existsSync(join(PG_BIN, "initdb"));
}

/** uid/gid to run server binaries as: postgres when we are root, else ourselves. */
export function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Collects a child's stdout and stderr as text; read them once it closed. */
export function collectOutput(child: {
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
}): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d) => {
    out.stdout += d;
  });
  child.stderr?.on("data", (d) => {
    out.stderr += d;
  });
  return out;
}

/** Runs a command (as the server user when asUser), never throwing on a non-zero exit. */
export function runCommand(
  file: string,
  args: string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    asServerUser?: boolean;
    input?: string;
  } = {},
): Promise<RunResult> {
  const user = options.asServerUser ? serverUser() : undefined;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      ...(user ?? {}),
    });
    const out = collectOutput(child);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), ...out }));
    // A program that does not read its input may exit first: that is not an error here.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A temp directory owned by the server user (so archive_command can write into it). */
/** Every directory serverOwnedTempDir made in this test file (temp-cleanup.ts removes them). */
const madeTempDirs = new Set<string>();

export async function removeServerOwnedTempDirs(): Promise<void> {
  for (const dir of madeTempDirs) await rm(dir, { recursive: true, force: true });
  madeTempDirs.clear();
}

export async function serverOwnedTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  madeTempDirs.add(dir);
  const user = serverUser();
  if (user) await chown(dir, user.uid, user.gid);
  return dir;
}

export interface ClusterOptions {
  /** Lines appended to postgresql.conf. */
  conf?: string[];
  /** Environment of the server process (archive_command inherits it). */
  env?: Record<string, string>;
  initdbArgs?: string[];
}

export class PgCluster {
  private running = false;
  /** More directories destroy() removes (a restored copy's parent directory). */
  readonly removeAlso: string[] = [];
  private constructor(
    readonly baseDir: string,
    readonly dataDir: string,
    readonly socketDir: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  /** initdb only: the server is not started (see start()). */
  static async init(options: ClusterOptions = {}): Promise<PgCluster> {
    const baseDir = await serverOwnedTempDir("pgha-pg-");
    const dataDir = join(baseDir, "data");
    const socketDir = join(baseDir, "sock");
    const port = await freePort();
    const cluster = new PgCluster(baseDir, dataDir, socketDir, port, options.env ?? {});
    await cluster.bin("initdb", [
      "-D",
      dataDir,
      "--username=postgres",
      "--auth=trust",
      "--no-sync",
      "--data-checksums",
      ...(options.initdbArgs ?? []),
    ]);
    await cluster.asServerUser(() => mkdir(socketDir, { mode: 0o700 }), socketDir);
    const conf = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${socketDir}'`,
      "fsync = off",
      "max_wal_senders = 4",
      "wal_level = replica",
      ...(options.conf ?? []),
    ];
    await cluster.appendConf(conf);
    return cluster;
  }

  /**
   * A cluster around an existing data directory (a fetched backup): its own port and
   * socket directory; `conf` lines are appended after the copied postgresql.conf.
   */
  static async adopt(dataDir: string, options: ClusterOptions = {}): Promise<PgCluster> {
    const baseDir = await serverOwnedTempDir("pgha-pg-");
    const socketDir = join(baseDir, "sock");
    const port = await freePort();
    const cluster = new PgCluster(baseDir, dataDir, socketDir, port, options.env ?? {});
    await cluster.asServerUser(() => mkdir(socketDir, { mode: 0o700 }), socketDir);
    await cluster.appendConf([
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${socketDir}'`,
      ...(options.conf ?? []),
    ]);
    return cluster;
  }

  /** A client program's options that connect to this cluster (as postgres). */
  connArgs(): string[] {
    return ["-h", this.socketDir, "-p", String(this.port), "-U", "postgres"];
  }

  /** libpq environment that connects to this cluster. */
  connEnv(): Record<string, string> {
    return {
      PGHOST: this.socketDir,
      PGPORT: String(this.port),
      PGUSER: "postgres",
      PGDATABASE: "postgres",
    };
  }

  /** Waits until the server accepts queries and is out of recovery. */
  async waitPromoted(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.sql("SELECT pg_is_in_recovery()").catch(() => "t");
      if (state === "f") return;
      if (Date.now() > deadline)
        throw new Error(`server still in recovery: ${await this.serverLog()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async asServerUser(make: () => Promise<unknown>, path: string): Promise<void> {
    await make();
    const user = serverUser();
    if (user) await chown(path, user.uid, user.gid);
  }

  async appendConf(lines: string[]): Promise<void> {
    const path = join(this.dataDir, "postgresql.conf");
    const { appendFile } = await import("node:fs/promises");
    await appendFile(path, `\n${lines.join("\n")}\n`);
  }

  /** Writes a file readable by the server user into the cluster's base directory. */
  async writeFile(name: string, content: string): Promise<string> {
    const path = join(this.baseDir, name);
    await writeFile(path, content, { mode: 0o644 });
    return path;
  }

  async bin(name: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    const result = await runCommand(join(PG_BIN, name), args, {
      env: { ...this.env, ...env },
      asServerUser: true,
      cwd: this.baseDir,
    });
    if (result.code !== 0) {
      throw new Error(
        `${name} ${args.join(" ")} exited ${result.code}: ${result.stderr || result.stdout}`,
      );
    }
    return result;
  }

  async start(): Promise<void> {
    await this.bin("pg_ctl", [
      "start",
      "-w",
      "-t",
      "60",
      "-D",
      this.dataDir,
      "-l",
      join(this.baseDir, "server.log"),
    ]);
    this.running = true;
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!this.running) return;
    await this.bin("pg_ctl", ["stop", "-w", "-t", "60", "-m", mode, "-D", this.dataDir]);
    this.running = false;
  }

  /** Runs SQL through psql and returns the unaligned, tuples-only output. */
  async sql(query: string, database = "postgres"): Promise<string> {
    const result = await this.bin("psql", [
      ...this.connArgs(),
      "-d",
      database,
      "-v",
      "ON_ERROR_STOP=1",
      "-At",
      "-c",
      query,
    ]);
    return result.stdout.trim();
  }

  async pgbench(args: string[]): Promise<void> {
    await this.bin("pgbench", [...this.connArgs(), ...args, "postgres"]);
  }

  async serverLog(): Promise<string> {
    const { readFile } = await import("node:fs/promises");
    return readFile(join(this.baseDir, "server.log"), "utf8").catch(() => "");
  }

  async destroy(): Promise<void> {
    try {
      await this.stop("immediate");
    } finally {
      await stopBackgroundProcesses(this.dataDir);
      for (const dir of [this.baseDir, ...this.removeAlso])
        await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Stops the pgha archiver and prefetcher of a data directory before it is removed. */
export async function stopBackgroundProcesses(dataDir: string): Promise<void> {
  await stopSpoolProcesses(dataDir);
}
