/**
 * Writing metrics for node_exporter's textfile collector: it reads every *.prom file of a
 * directory at each scrape, so a file must change from whole to whole. The text goes to a
 * temporary name the collector ignores (it does not end in .prom), is fsynced, and is
 * renamed over the old file. Readable by all (0644): the collector runs as another user.
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { describeSystemError, LocalIoError } from "../errors.js";
import { syncDirectory, writeAll } from "../local-files.js";

/** The file the metrics of one cluster, or of all (undefined), go to. */
export function textfileName(cluster: string | undefined): string {
  return cluster === undefined ? "pgha.prom" : `pgha-${cluster}.prom`;
}

export async function writeTextfile(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  const tmp = join(dir, `.${name}.tmp-${randomBytes(4).toString("hex")}`);
  try {
    const handle = await open(tmp, "wx", 0o644);
    try {
      await handle.chmod(0o644); // whatever the umask
      await writeAll(handle, Buffer.from(text, "utf8"));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    await syncDirectory(dir);
    return path;
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw new LocalIoError(`cannot write ${path}: ${describeSystemError(error)}`, {
      hint: "--textfile names the directory node_exporter's --collector.textfile.directory reads",
      cause: error,
    });
  }
}
