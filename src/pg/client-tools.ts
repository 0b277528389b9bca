/**
 * The PostgreSQL client programs pgha runs (pg_dump, pg_dumpall, pg_restore, psql) and
 * the libpq environment they get, so they reach the same server pgha's own connection does.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "pg-connection-string";
import { PostgresError, UsageError } from "../errors.js";
import { conninfoUri } from "./conninfo.js";

export type ClientTool = "pg_dump" | "pg_dumpall" | "pg_restore" | "psql" | "pg_ctl";

export interface ClientTools {
  path(tool: ClientTool): string;
  /** The major version of pg_dump, e.g. 15. */
  major: number;
}

/**
 * Where PostgreSQL's programs are looked for: --pg-bin, else the major's Debian directory
 * when it holds `program`, else undefined (PATH).
 */
function programDirectory(
  pgBin: string | undefined,
  major: number,
  program: string,
): string | undefined {
  const debian = `/usr/lib/postgresql/${major}/bin`;
  return pgBin ?? (existsSync(join(debian, program)) ? debian : undefined);
}

/** Finds the client programs: --pg-bin, else the server major's Debian directory, else PATH. */
export async function findClientTools(
  pgBin: string | undefined,
  serverVersionNum: number,
): Promise<ClientTools> {
  const serverMajor = Math.floor(serverVersionNum / 10000);
  const dir = programDirectory(pgBin, serverMajor, "pg_dump");
  const path = (tool: ClientTool) => (dir ? join(dir, tool) : tool);
  let version: string;
  try {
    version = (await promisify(execFile)(path("pg_dump"), ["--version"])).stdout;
  } catch (error) {
    throw new UsageError(
      `cannot run ${path("pg_dump")}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      "set --pg-bin (PGHA_PG_BIN) to the directory holding pg_dump, pg_dumpall, pg_restore and psql",
    );
  }
  const major = Number(/(\d+)(?:\.\d+)?/.exec(version)?.[1] ?? 0);
  if (major < serverMajor) {
    throw new UsageError(
      `${path("pg_dump")} is version ${major}, older than the server (${serverMajor}): it cannot dump it`,
      `install the PostgreSQL ${serverMajor} client programs and point --pg-bin at them`,
    );
  }
  for (const tool of ["pg_dumpall", "pg_restore", "psql"] as const) {
    if (dir && !existsSync(path(tool))) {
      throw new UsageError(
        `${path(tool)} does not exist`,
        "--pg-bin must hold pg_dump, pg_dumpall, pg_restore and psql",
      );
    }
  }
  return { path, major };
}

/**
 * pg_waldump for WAL of PostgreSQL `versionNum` (restore find), looked for as the client
 * programs are. pg_waldump reads only its own major's WAL (the page magic changes with each
 * major), so one of another major is refused here with what to do, instead of failing on
 * the first segment as if the archive were damaged.
 */
export async function findPgWaldump(
  pgBin: string | undefined,
  versionNum: number,
): Promise<string> {
  const major = Math.floor(versionNum / 10000);
  const dir = programDirectory(pgBin, major, "pg_waldump");
  const path = dir ? join(dir, "pg_waldump") : "pg_waldump";
  let version: string;
  try {
    version = (await promisify(execFile)(path, ["--version"])).stdout;
  } catch (error) {
    throw new PostgresError(
      `cannot run ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        hint: `restore find runs pg_waldump of PostgreSQL ${major}, the backup's: set --pg-bin to the directory of those binaries`,
      },
    );
  }
  const found = Number(/\(PostgreSQL\)\s+(\d+)/.exec(version)?.[1] ?? 0);
  if (found !== 0 && found !== major) {
    throw new UsageError(
      `${path} is of PostgreSQL ${found}, and the archived WAL of PostgreSQL ${major}: pg_waldump reads only its own major's WAL`,
      `install the PostgreSQL ${major} server programs and set --pg-bin to their directory (e.g. /usr/lib/postgresql/${major}/bin)`,
    );
  }
  return path;
}

/**
 * A database name as a libpq connection string: a name like "host=evil dbname=x" must
 * never be read as connection settings (pg_dump, pg_restore and psql all would).
 */
export function dbnameArg(name: string): string {
  return `dbname='${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * libpq variables for a child program: the caller's environment, overridden by what
 * --pg-conn says. The database is given to each program on its command line.
 */
export function libpqEnv(
  pgConn: string | undefined,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env = { ...base };
  if (!pgConn) return env;
  const c = parse(conninfoUri(pgConn));
  const set = (name: string, value: unknown) => {
    if (value !== undefined && value !== null && value !== "") env[name] = String(value);
  };
  set("PGHOST", c.host);
  set("PGPORT", c.port);
  set("PGUSER", c.user);
  set("PGPASSWORD", c.password);
  set("PGDATABASE", c.database);
  if (typeof c.ssl === "object" || c.ssl === true) set("PGSSLMODE", "require");
  const sslmode = (c as { sslmode?: string }).sslmode;
  set("PGSSLMODE", sslmode);
  return env;
}
