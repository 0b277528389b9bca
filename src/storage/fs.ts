/**
 * Local-directory ObjectStore: the embedded default repository.
 *
 * An object is one file at <root>/<key>. Its first line is a header, the object's
 * metadata, so that body and metadata appear together in one atomic rename:
 *
 *     PGHA-OBJECT-1 {"pgha-sha256":"...",...}\n<body bytes>
 *
 * (`tail -c +$(( $(head -1 FILE | wc -c) + 1 )) FILE` strips it by hand.)
 *
 * put writes <dir>/.tmp-<name>-<random>, fsyncs it, then renames it into place (or,
 * with ifAbsent, link(2)s it, which fails atomically if the key exists), and fsyncs the
 * directory. Leftover .tmp- files from a crash are ignored by list and get.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  rename,
  stat,
  unlink,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { AlreadyExistsError, describeSystemError, NotFoundError, StorageError } from "../errors.js";
import { isErrno, syncCreatedDirectories, syncDirectory, writeAll } from "../local-files.js";
import { compareKeys } from "./memory.js";
import {
  assertValidKey,
  assertValidMetadata,
  type ListEntry,
  type ListOptions,
  type ObjectInfo,
  type ObjectStore,
  type PutBody,
  type PutOptions,
  type StoreCapabilities,
} from "./object-store.js";

const MAGIC = "PGHA-OBJECT-1 ";
const MAX_HEADER = 8192;

export class FsStore implements ObjectStore {
  readonly url: string;
  readonly capabilities: StoreCapabilities = {
    atomicIfAbsent: true, // link(2) fails on an existing name
    atomicReplace: true, // rename(2)
    durableWhenVisible: false, // a writer may die between rename/link and the directory fsync
  };

  constructor(readonly root: string) {
    this.url = `file://${root}`;
  }

  private path(key: string): string {
    assertValidKey(key);
    return join(this.root, key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.path(key);
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
      throw this.failure(`cannot read ${path}`, error);
    }
    try {
      const { metadata, headerBytes } = await readHeader(handle, path);
      const { size } = await handle.stat();
      return { key, size: size - headerBytes, metadata };
    } finally {
      await handle.close();
    }
  }

  async get(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    const path = this.path(key);
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) {
        throw new NotFoundError(`${this.url}/${key} does not exist`);
      }
      throw this.failure(`cannot read ${path}`, error);
    }
    try {
      const { metadata, headerBytes } = await readHeader(handle, path);
      const { size } = await handle.stat();
      // The stream owns the handle from here on and closes it when done or destroyed.
      const body = createReadStream("", { fd: handle, start: headerBytes, autoClose: true });
      return { info: { key, size: size - headerBytes, metadata }, body };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
    const path = this.path(key);
    const metadata = { ...(options.metadata ?? {}) };
    assertValidMetadata(metadata);
    const dir = dirname(path);
    const tmp = join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
    const header = Buffer.from(`${MAGIC}${JSON.stringify(metadata)}\n`);
    if (header.length > MAX_HEADER) {
      throw new StorageError(`metadata of ${key} is too large for a local object header`, {
        transient: false,
      });
    }
    try {
      const created = await mkdir(dir, { recursive: true });
      // A new directory entry is durable only once its parent is fsynced.
      if (created !== undefined) await syncCreatedDirectories(created, dir);
    } catch (error) {
      throw this.failure(`cannot create ${dir}`, error);
    }
    let size = 0;
    try {
      const handle = await open(tmp, "wx", 0o640);
      try {
        await writeAll(handle, header);
        if (body instanceof Uint8Array) {
          await writeAll(handle, body);
          size = body.length;
        } else {
          for await (const chunk of body) {
            const buf = chunk as Uint8Array;
            await writeAll(handle, buf);
            size += buf.length;
          }
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (options.ifAbsent) {
        try {
          await link(tmp, path);
        } catch (error) {
          if (isErrno(error, "EEXIST")) throw new AlreadyExistsError(key);
          throw error;
        }
        await unlink(tmp);
      } else {
        await rename(tmp, path);
      }
      await syncDirectory(dir);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      if (error instanceof AlreadyExistsError || error instanceof StorageError) throw error;
      throw this.failure(`cannot write ${path}`, error);
    }
    return { key, size, metadata };
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    // Walk only the deepest directory that the prefix names completely.
    const slash = prefix.lastIndexOf("/");
    const base = slash === -1 ? "" : prefix.slice(0, slash);
    if (base !== "") assertValidKey(base);
    const found: ListEntry[] = [];
    await this.walk(base, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    const after = options.after;
    for (const item of found) {
      if (after !== undefined && compareKeys(item.key, after) <= 0) continue;
      // The stat size includes the header; head gives the body size.
      const info = await this.head(item.key);
      if (info) yield { ...item, size: info.size };
    }
  }

  private async walk(relDir: string, prefix: string, out: ListEntry[]): Promise<void> {
    const absDir = relDir === "" ? this.root : join(this.root, relDir);
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(absDir, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return;
      throw this.failure(`cannot list ${absDir}`, error);
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".tmp-")) continue;
      const key = relDir === "" ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) {
          await this.walk(key, prefix, out);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(join(absDir, entry.name)).catch(() => undefined);
        if (info) out.push({ key, size: -1, lastModified: info.mtime });
      }
    }
  }

  async durable(key: string): Promise<void> {
    const path = this.path(key);
    try {
      const handle = await open(path, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDirectory(dirname(path));
    } catch (error) {
      throw this.failure(`cannot fsync ${path}`, error);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    try {
      await unlink(path);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return;
      throw this.failure(`cannot delete ${path}`, error);
    }
  }

  private failure(what: string, error: unknown): StorageError {
    const denied = isErrno(error, "EACCES") || isErrno(error, "EPERM");
    return new StorageError(`${what}: ${describeSystemError(error)}`, {
      transient: false,
      cause: error,
      ...(denied
        ? {
            hint: `the repository must be writable by the user running pgha (archive_command runs as the PostgreSQL server user): chown -R postgres ${this.root}`,
          }
        : {}),
    });
  }
}

async function readHeader(
  handle: FileHandle,
  path: string,
): Promise<{ metadata: Record<string, string>; headerBytes: number }> {
  const buf = Buffer.alloc(MAX_HEADER);
  const { bytesRead } = await handle.read(buf, 0, MAX_HEADER, 0);
  const newline = buf.subarray(0, bytesRead).indexOf(10);
  const line = newline === -1 ? "" : buf.subarray(0, newline).toString("utf8");
  if (!line.startsWith(MAGIC)) {
    throw new StorageError(`${path} is not a pgha object (bad header)`, {
      transient: false,
      hint: "files in a local repository must only be written by pgha",
    });
  }
  let metadata: Record<string, string>;
  try {
    metadata = JSON.parse(line.slice(MAGIC.length)) as Record<string, string>;
  } catch {
    throw new StorageError(`${path} has a corrupt header`, { transient: false });
  }
  return { metadata, headerBytes: newline + 1 };
}
