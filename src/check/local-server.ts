/**
 * The server running on a data directory (`pgha check --pgdata DIR` with no --pg-conn):
 * postmaster.pid names its port and socket directory, the data directory's owner the role
 * to connect as (libpq's PGUSER and PGDATABASE apply when set).
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { PostgresError } from "../errors.js";

export interface PostmasterPid {
  pid: number;
  port: number;
  /** The first unix_socket_directories entry, or the first listen address. */
  host: string;
}

/** Pure: postmaster.pid's lines (PostgreSQL 10+: pid, data directory, start, port, socket, listen). */
export function parsePostmasterPid(text: string): PostmasterPid | undefined {
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  const socket = lines[4]?.trim() ?? "";
  const listen = lines[5]?.trim() ?? "";
  const host = socket !== "" ? socket : listen === "*" || listen === "" ? "localhost" : listen;
  return { pid, port, host };
}

/** Pure: the name /etc/passwd gives a uid. */
export function userNameOf(passwd: string, uid: number): string | undefined {
  for (const line of passwd.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && Number(id) === uid) return name;
  }
  return undefined;
}

/** A connection URI for the server running on `pgdata`; PostgresError when none runs. */
export async function connInfoOfDataDirectory(
  pgdata: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const file = join(pgdata, "postmaster.pid");
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new PostgresError(
      error.code === "ENOENT"
        ? `no server runs on ${pgdata}: it has no postmaster.pid`
        : `cannot read ${file}: ${error.message}`,
      { hint: "start the server, or name it with --pg-conn (PGHA_PG_CONN)" },
    );
  });
  const found = parsePostmasterPid(text);
  if (!found) throw new PostgresError(`${file} does not name a port`);
  let user = env.PGUSER;
  if (!user) {
    const owner = (await stat(pgdata)).uid;
    user = userNameOf(await readFile("/etc/passwd", "utf8").catch(() => ""), owner) ?? "postgres";
  }
  const database = env.PGDATABASE || "postgres";
  return `postgresql://${encodeURIComponent(user)}@/${encodeURIComponent(database)}?host=${encodeURIComponent(found.host)}&port=${found.port}`;
}
