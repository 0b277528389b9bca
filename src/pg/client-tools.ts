/**
 * The PostgreSQL client programs pgha runs (pg_dump, pg_dumpall, pg_restore, psql) and
 * the libpq environment they get, so they reach the same server pgha's own connection does.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "pg-connection-string";
import { UsageError } from "../errors.js";
import { conninfoUri } from "./conninfo.js";

export type ClientTool = "pg_dump" | "pg_dumpall" | "pg_restore" | "psql" | "pg_ctl";

export interface ClientTools {
  path(tool: ClientTool): string;
  /** The major version of pg_dump, e.g. 15. */
  major: number;
}

/** Finds the client programs: --pg-bin, else the server major's Debian directory, else PATH. */
export async function findClientTools(
  pgBin: string | undefined,
  serverVersionNum: number,
): Promise<ClientTools> {
  const serverMajor = Math.floor(serverVersionNum / 10000);
  const debian = `/usr/lib/postgresql/${serverMajor}/bin`;
  const dir = pgBin ?? (existsSync(join(debian, "pg_dump")) ? debian : undefined);
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
