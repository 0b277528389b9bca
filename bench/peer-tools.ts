/**
 * The WAL tools the peer benchmark compares, each able to open a "run": the
 * archive_command and restore_command lines PostgreSQL would be given (the environment
 * they need written into the line as VAR='value' assignments), the repository they use,
 * and its stored segments.
 *
 * pgha's variants are data (PGHA_WAL_VARIANTS, plus BENCH_PGHA_VARIANTS as JSON): an
 * asynchronous archiver or a prefetching restore is one more entry.
 */
import { randomBytes } from "node:crypto";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { pghaCommandLine } from "../test/helpers/pgha.js";
import { s3Env } from "../test/helpers/s3-server.js";
import { onCleanup } from "./common.js";
import { type BenchMaterial, serverMkdir } from "./peer-cluster.js";
import { type BenchS3, type Endpoint, pghaTlsEnv } from "./peer-s3.js";
import {
  createStanza,
  pgBackRestLine,
  waitForBackground,
  writePgBackRestConfig,
} from "./pgbackrest.js";

/** A pgha way of archiving and/or restoring WAL. */
export interface PghaWalVariant {
  id: string;
  label: string;
  /** pgha's arguments in archive_command ("wal-push %p"); absent: it does not archive. */
  archive?: string;
  /** pgha's arguments in restore_command ("wal-fetch %f %p"); absent: it does not restore. */
  restore?: string;
  /**
   * Extra settings (PGHA_*). "{spool}" in a value becomes a fresh, server-owned directory
   * of the run (for a spool or queue).
   */
  env?: Record<string, string>;
  /** Acknowledges from a local spool (the asynchronous archive targets apply to it). */
  asyncArchive?: boolean;
  /** Fetches ahead (the prefetch restore targets apply to it). */
  prefetch?: boolean;
}

/**
 * pgha synchronous (wal-push stores each file itself; wal-fetch without prefetch), the
 * asynchronous archiver (--archive-async), and wal-fetch with its default prefetch.
 */
export const PGHA_WAL_VARIANTS: PghaWalVariant[] = [
  {
    id: "pgha",
    label: "pgha sync",
    archive: "wal-push %p",
    restore: "wal-fetch %f %p",
    env: { PGHA_PREFETCH: "0" },
  },
  {
    id: "pgha-async",
    label: "pgha async",
    archive: "wal-push %p",
    env: { PGHA_ARCHIVE_ASYNC: "true" },
    asyncArchive: true,
  },
  {
    id: "pgha-prefetch",
    label: "pgha prefetch",
    restore: "wal-fetch %f %p",
    env: { PGHA_PREFETCH: "8" },
    prefetch: true,
  },
];

/** PGHA_WAL_VARIANTS plus those of BENCH_PGHA_VARIANTS (a JSON array of the same shape). */
export function pghaWalVariants(): PghaWalVariant[] {
  const extra = process.env.BENCH_PGHA_VARIANTS;
  if (!extra) return PGHA_WAL_VARIANTS;
  const parsed = JSON.parse(extra) as PghaWalVariant[];
  if (!Array.isArray(parsed) || parsed.some((v) => typeof v.id !== "string" || !v.label)) {
    throw new Error(
      "BENCH_PGHA_VARIANTS: expected a JSON array of {id, label, archive?, restore?, env?}",
    );
  }
  return [...PGHA_WAL_VARIANTS, ...parsed];
}

export type Family = "floor" | "pgbackrest" | "pgha";

export interface RunSpec {
  endpoint: Endpoint;
  /** The data directory the commands run in (pgBackRest's pg1-path). */
  pgdata: string;
  /** "fresh": an empty repository of the run's own; "read": the shared one holding the N segments. */
  repo: "fresh" | "read";
}

export interface ToolRun {
  /** archive_command, PostgreSQL's %-syntax. */
  archiveCommand: string;
  /** restore_command, PostgreSQL's %-syntax. */
  restoreCommand: string;
  /** Segments in the run's repository so far, with their stored sizes. */
  stored(): Promise<Map<string, number>>;
  /** Waits for the run's background work; frees its scratch, and a fresh repository unless kept. */
  close(options?: { keepRepository?: boolean }): Promise<void>;
}

export interface WalTool {
  id: string;
  label: string;
  family: Family;
  /** Acknowledges from a spool that a background pusher fills. */
  asyncArchive: boolean;
  /** restore_command is served from segments fetched ahead. */
  prefetch: boolean;
  archives: boolean;
  restores: boolean;
  /** Tools sharing a read repository (a family's sync member fills it). */
  readRepository: string;
  open(spec: RunSpec): Promise<ToolRun>;
}

/** The columns of a section's row that say which tool it measured. */
export interface ToolColumns {
  tool: string;
  label: string;
  family: WalTool["family"];
  /** Archiving: acknowledges from a spool; restoring: fetches ahead. */
  async: boolean;
}

export function toolColumns(tool: WalTool, side: "archive" | "restore"): ToolColumns {
  return {
    tool: tool.id,
    label: tool.label,
    family: tool.family,
    async: side === "archive" ? tool.asyncArchive : tool.prefetch,
  };
}

export interface ToolContext {
  s3: BenchS3;
  material: BenchMaterial;
}

/** `VAR='value' ... command`: the environment the server would hand the command. */
export function withEnv(env: Record<string, string>, command: string): string {
  const assignments = Object.entries(env).map(([key, value]) => {
    if (value.includes("'")) throw new Error(`${key}: a quote in ${value}`);
    return `${key}='${value}' `;
  });
  return `${assignments.join("")}${command}`;
}

async function runDir(prefix: string): Promise<string> {
  const dir = await serverOwnedTempDir(prefix);
  onCleanup(dir, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

function uniquePrefix(id: string): string {
  return `${id}-${randomBytes(4).toString("hex")}`;
}

/** cp (+ sync when archiving): the floor every tool is measured against. */
export function floorTool(ctx: ToolContext): WalTool {
  return {
    id: "floor",
    label: "cp (floor)",
    family: "floor",
    asyncArchive: false,
    prefetch: false,
    archives: true,
    restores: true,
    readRepository: "floor",
    async open() {
      const dir = await runDir("pgha-bench-cp-");
      const into = await serverMkdir(join(dir, "archive"));
      return {
        archiveCommand: `cp %p ${into}/%f && sync ${into}/%f`,
        restoreCommand: `cp ${ctx.material.segmentDir}/%f %p`,
        async stored() {
          const found = new Map<string, number>();
          for (const name of await readdir(into)) {
            found.set(name, (await stat(join(into, name))).size);
          }
          return found;
        },
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  };
}

const READ_PGBACKREST = "read-pgbackrest";
const stanzasMade = new Set<string>();

export function pgBackRestTool(ctx: ToolContext, async: boolean): WalTool {
  const id = async ? "pgbackrest-async" : "pgbackrest";
  return {
    id,
    label: async ? "pgBackRest async" : "pgBackRest sync",
    family: "pgbackrest",
    asyncArchive: async,
    prefetch: async,
    archives: true,
    restores: true,
    readRepository: READ_PGBACKREST,
    async open(spec) {
      const dir = await runDir("pgha-bench-pgbr-");
      const prefix = spec.repo === "fresh" ? uniquePrefix(id) : READ_PGBACKREST;
      const config = await writePgBackRestConfig({
        dir,
        s3: ctx.s3,
        endpoint: spec.endpoint,
        prefix,
        pgPath: spec.pgdata,
        async,
        processMax: async ? 2 : 1,
      });
      if (!stanzasMade.has(prefix)) {
        await createStanza(config);
        stanzasMade.add(prefix);
      }
      return {
        archiveCommand: pgBackRestLine(config, "archive-push %p"),
        restoreCommand: pgBackRestLine(config, 'archive-get %f "%p"'),
        stored: () => ctx.s3.segments(prefix),
        async close(options) {
          await waitForBackground(config);
          await rm(dir, { recursive: true, force: true });
          if (spec.repo === "fresh" && !options?.keepRepository) await ctx.s3.removePrefix(prefix);
        },
      };
    },
  };
}

const READ_PGHA = "read-pgha";

/** pgha's settings for a repository at `prefix` of the bench bucket. */
export function pghaS3Env(s3: BenchS3, endpoint: Endpoint, prefix: string): Record<string, string> {
  return {
    ...s3Env(s3.server, prefix),
    PGHA_S3_ENDPOINT: endpoint.url,
    PGHA_CLUSTER: "bench",
    PGHA_LOG_LEVEL: "warn",
    ...pghaTlsEnv(s3.caFile),
  };
}

export function pghaTool(ctx: ToolContext, variant: PghaWalVariant): WalTool {
  return {
    id: variant.id,
    label: variant.label,
    family: "pgha",
    asyncArchive: variant.asyncArchive === true,
    prefetch: variant.prefetch === true,
    archives: variant.archive !== undefined,
    restores: variant.restore !== undefined,
    readRepository: READ_PGHA,
    async open(spec) {
      const dir = await runDir("pgha-bench-pgha-");
      const spool = await serverMkdir(join(dir, "spool"));
      const prefix = spec.repo === "fresh" ? uniquePrefix(variant.id) : READ_PGHA;
      const env = pghaS3Env(ctx.s3, spec.endpoint, prefix);
      for (const [key, value] of Object.entries(variant.env ?? {})) {
        env[key] = value.replaceAll("{spool}", spool);
      }
      const line = (args: string | undefined) =>
        args ? withEnv(env, pghaCommandLine(args)) : "false";
      return {
        archiveCommand: line(variant.archive),
        restoreCommand: line(variant.restore),
        stored: () => ctx.s3.segments(prefix),
        async close(options) {
          await rm(dir, { recursive: true, force: true });
          if (spec.repo === "fresh" && !options?.keepRepository) await ctx.s3.removePrefix(prefix);
        },
      };
    },
  };
}

export function allTools(ctx: ToolContext): WalTool[] {
  return [
    floorTool(ctx),
    pgBackRestTool(ctx, false),
    pgBackRestTool(ctx, true),
    ...pghaWalVariants().map((variant) => pghaTool(ctx, variant)),
  ];
}
