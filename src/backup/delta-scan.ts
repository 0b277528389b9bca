/**
 * restore --delta, the local side: read what a stopped server's data directory (and its
 * tablespaces) holds, and clear what a restore into an empty directory would not leave.
 * planDelta (delta-plan.ts) decides from what scanTargets reads.
 */
import { createHash } from "node:crypto";
import { lstat, open, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { describeSystemError, LocalIoError, RefusedError } from "../errors.js";
import { BLOCK_HASH_BYTES, type ChainFileEntry, fileKey } from "./chain-manifest.js";
import type { ExistingFile } from "./delta-plan.js";
import { runEach } from "./job-pool.js";

/** A part of the restore and the directory it goes to. */
export interface PartDir {
  part: string;
  root: string;
}

interface Found {
  /** Path relative to the part's root. */
  path: string;
  type: "file" | "directory" | "other";
  size: number;
}

async function walk(root: string, rel: string, out: Found[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(rel === "" ? root : join(root, rel));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const name of names.sort()) {
    const path = rel === "" ? name : `${rel}/${name}`;
    const stats = await lstat(join(root, path));
    if (stats.isDirectory()) {
      out.push({ path, type: "directory", size: 0 });
      await walk(root, path, out);
    } else out.push({ path, type: stats.isFile() ? "file" : "other", size: stats.size });
  }
}

/** Every entry under each part's directory (symlinks are not followed). */
async function walkParts(parts: readonly PartDir[]): Promise<Map<string, Found[]>> {
  const found = new Map<string, Found[]>();
  for (const { part, root } of parts) {
    const out: Found[] = [];
    try {
      await walk(root, "", out);
    } catch (error) {
      throw new LocalIoError(`cannot read ${root}: ${describeSystemError(error)}`, {
        cause: error,
      });
    }
    found.set(part, out);
  }
  return found;
}

/**
 * The regular files of the targets; for those the backup has: the block hashes where its
 * entry has a block map, else the sha256 where the sizes are equal.
 */
export async function scanTargets(
  parts: readonly PartDir[],
  files: readonly ChainFileEntry[],
  jobs: number,
): Promise<Map<string, ExistingFile>> {
  const wanted = new Map(files.map((f) => [fileKey(f), f]));
  const existing = new Map<string, ExistingFile>();
  const toHash: { path: string; key: string; entry: ChainFileEntry }[] = [];
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found) {
      if (f.type !== "file") continue;
      const key = `${part}/${f.path}`;
      existing.set(key, { size: f.size });
      const entry = wanted.get(key);
      if (entry && (entry.size === f.size || entry.blocks))
        toHash.push({ path: join(root, f.path), key, entry });
    }
  }
  await runEach(toHash, Math.max(1, jobs), async ({ path, key, entry }) => {
    const hashed = await hashFile(path, entry.blocks?.size);
    const found = existing.get(key) as ExistingFile;
    found.sha256 = hashed.sha256;
    found.blockHashes = hashed.blockHashes;
  });
  return existing;
}

/**
 * A file's sha256 or, with a block size, the first 16 bytes of each block's sha256 (a
 * block-mapped file is compared block by block: one pass of hashing, not two).
 */
export async function hashFile(
  path: string,
  blockSize: number | undefined,
): Promise<{ sha256?: string; blockHashes?: Buffer }> {
  const handle = await open(path, "r").catch((error: unknown) => {
    throw new LocalIoError(`cannot read ${path}: ${describeSystemError(error)}`, { cause: error });
  });
  try {
    const whole = createHash("sha256");
    const blocks: Buffer[] = [];
    const step = blockSize === undefined ? 1 << 20 : blockSize * 128;
    const buffer = Buffer.allocUnsafe(step);
    for (;;) {
      let fill = 0;
      while (fill < step) {
        const { bytesRead } = await handle.read(buffer, fill, step - fill, null);
        if (bytesRead === 0) break;
        fill += bytesRead;
      }
      if (fill === 0) break;
      const data = buffer.subarray(0, fill);
      if (blockSize === undefined) whole.update(data);
      else
        for (let at = 0; at < fill; at += blockSize)
          blocks.push(
            createHash("sha256")
              .update(data.subarray(at, at + blockSize))
              .digest()
              .subarray(0, BLOCK_HASH_BYTES),
          );
      if (fill < step) break;
    }
    return blockSize === undefined
      ? { sha256: whole.digest("hex") }
      : { blockHashes: Buffer.concat(blocks) };
  } finally {
    await handle.close();
  }
}

/**
 * Before the fetch: removes every entry of the targets that is not a directory or a file
 * of the backup (files the backup does not have, symlinks: they are made again from the
 * backup, anything else), and whatever stands where the backup has a file but is not one.
 */
export async function removeStrays(
  parts: readonly PartDir[],
  files: readonly ChainFileEntry[],
): Promise<number> {
  const wanted = new Set(files.map(fileKey));
  let removed = 0;
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found) {
      const isWanted = wanted.has(`${part}/${f.path}`);
      if (f.type === "file" ? isWanted : f.type === "directory" ? !isWanted : false) continue;
      await rm(join(root, f.path), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * After the fetch: removes directories that are neither in the backup's tree (its
 * directory entries) nor above one of its files. Deepest first.
 */
export async function removeStrayDirectories(
  parts: readonly PartDir[],
  directories: ReadonlySet<string>,
  files: readonly ChainFileEntry[],
): Promise<void> {
  const above = new Set<string>();
  for (const f of files) {
    const root = parts.find((p) => p.part === f.part)?.root;
    if (root === undefined) continue;
    const steps = f.path.split("/");
    for (let n = 1; n < steps.length; n++) above.add(join(root, ...steps.slice(0, n)));
  }
  for (const [part, found] of await walkParts(parts)) {
    const root = parts.find((p) => p.part === part)?.root as string;
    for (const f of found.reverse()) {
      const path = join(root, f.path);
      if (f.type === "directory" && !directories.has(path) && !above.has(path))
        await rm(path, { recursive: true, force: true });
    }
  }
}

/** restore --delta is for a stopped server: refuses when postmaster.pid names a live process. */
export async function refuseRunningServer(pgdata: string): Promise<void> {
  const text = await readFile(join(pgdata, "postmaster.pid"), "utf8").catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  if (!(pid > 0)) return;
  let alive = true;
  try {
    process.kill(pid, 0);
  } catch (error) {
    alive = (error as NodeJS.ErrnoException).code === "EPERM";
  }
  if (alive)
    throw new RefusedError(
      `${pgdata}/postmaster.pid names process ${pid}, which is running; nothing was written`,
      `stop the server first (pg_ctl -D ${pgdata} stop): restore --delta rewrites its files`,
    );
}

/**
 * restore --delta removes pg_wal's contents, as a restore into an empty directory has
 * none: refused while it holds segments the server has not archived yet (.ready), which
 * may be the only copy of that WAL.
 */
export async function refuseUnarchivedWal(pgdata: string): Promise<void> {
  const status = join(pgdata, "pg_wal", "archive_status");
  const names = await readdir(status).catch(() => [] as string[]);
  const ready = names.filter((n) => n.endsWith(".ready")).sort();
  if (ready.length > 0)
    throw new RefusedError(
      `${status} lists ${ready.length} WAL files not archived yet (first: ${ready[0]?.replace(/\.ready$/, "")}); nothing was written`,
      "they may be the only copy of that WAL: start the server with archiving on until they are archived, or move them away yourself if they are not needed",
    );
}
