/** Writes the recovery configuration renderRecoveryConfig renders into a data directory. */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type RecoverySpec, renderRecoveryConfig } from "./recovery-config.js";

/** Returns the paths written. */
export async function writeRecoveryConfig(pgdata: string, spec: RecoverySpec): Promise<string[]> {
  const auto = join(pgdata, "postgresql.auto.conf");
  const previous = await readFile(auto, "utf8").catch(() => "");
  const written: string[] = [];
  for (const file of renderRecoveryConfig(spec, previous)) {
    const path = join(pgdata, file.name);
    await writeFile(path, file.content, file.mode === undefined ? {} : { mode: file.mode });
    if (file.mode !== undefined) await chmod(path, file.mode);
    written.push(path);
  }
  return written;
}
