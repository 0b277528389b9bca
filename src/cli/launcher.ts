/**
 * The command that runs this pgha again, for the command lines pgha writes (restore_command)
 * and the processes it starts: the shell launcher bin/pgha when this process came through
 * it (it says where it is in PGHA_LAUNCHER), else the Node.js entry this process runs.
 */
import { resolve } from "node:path";

export function launcherPath(): string {
  return process.env.PGHA_LAUNCHER || resolve(process.argv[1] ?? "pgha");
}
