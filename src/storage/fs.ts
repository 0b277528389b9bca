/**
 * Local-directory ObjectStore: the embedded default repository.
 *
 * An object is one file at <root>/<key>. Its first line is a header, the object's
 * metadata, so that body and metadata appear together in one atomic rename:
 *
 *     PGHA-OBJECT-1 {"pgha-sha256":"...",...}<spaces>\n<body bytes>
 *
 * Readers take the header to be the first line, whatever its length. Writers pad the
 * JSON with spaces so that the header is exactly HEADER_BYTES (4096) long: the body size
 * is then the file size minus 4096, known from stat(2) without opening the file. (Objects
 * written before pgha padded headers have a shorter header line; they stay readable, and
 * pgha versions that do not pad read padded ones.) Metadata that does not fit is refused.
 * `tail -c +4097 FILE` strips the header by hand (older objects:
 * `tail -c +$(( $(head -1 FILE | wc -c) + 1 )) FILE`).
 *
 * list takes sizes from stat only in a store known to hold nothing but padded objects:
 * one that has the marker file <root>/.pgha-store, which put writes when it creates the
 * root or the first directory in an empty root. Elsewhere (a repository older than the
 * marker) list opens each object once to read its header length.
 *
 * put writes <dir>/.tmp-<random>, fsyncs it, then renames it into place (or, with
 * ifAbsent, link(2)s it, which fails atomically if the key exists), and fsyncs the
 * directory. Leftover .tmp- files from a crash (a wal-push or backup killed mid-write: up
 * to a whole object each) are ignored by list and get; listLeftovers/deleteLeftover find
 * and remove old ones (pgha prune does, for files idle for an hour). Keys never start with
 * .tmp- or .pgha (object-store.ts), so these names cannot clash with objects.
 *
 * Root and the PostgreSQL user share one repository: archive_command runs as postgres,
 * an operator may run `pgha backup` or `dump` as root. Run as root, put gives every
 * directory and file it creates the owner and group of the repository's root directory
 * (of its nearest existing ancestor when put creates the root), so a directory root made
 * first cannot lock the PostgreSQL user out of the rest of the repository.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  chown,
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  AlreadyExistsError,
  describeSystemError,
  NotFoundError,
  StorageError,
  UsageError,
} from "../errors.js";
import { isErrno, syncCreatedDirectories, syncDirectory, writeAll } from "../local-files.js";
import type * as Store from "./object-store.js";
import { assertValidKey, assertValidMetadata, compareKeys } from "./object-store.js";

/**
 * A local repository is a directory, or does not exist yet (the first put makes it). A
 * file there would read as an empty repository (wal-fetch: "not available") and fail
 * every write, so it is refused up front.
 */
export async function checkLocalRepository(root: string): Promise<void> {
  const found = await stat(root).catch(() => undefined);
  if (found && !found.isDirectory()) {
    throw new UsageError(
      `the repository ${root} is ${found.isFile() ? "a file" : "not a directory"}`,
      '--repo (PGHA_REPO, config file "repo") names a directory: a pgha repository, or an absolute path that does not exist yet',
    );
  }
}

const MAGIC = "PGHA-OBJECT-1 ";
/** The length of every header put writes: the body starts at this offset. */
export const HEADER_BYTES = 4096;
/** The longest header a reader accepts (objects written before headers were padded). */
const MAX_HEADER = 8192;
/** At the root: every object in this store has a HEADER_BYTES header. */
export const MARKER_NAME = ".pgha-store";
const MARKER_TEXT = `${JSON.stringify({ format: "pgha-local-store", headerBytes: HEADER_BYTES })}\n`;
/** How many objects list stats (or opens) ahead of the one it yields. */
const LIST_AHEAD = 16;

/** Who owns what put creates: undefined leaves it to the creating process. */
type Owner = { uid: number; gid: number } | undefined;

export interface FsStoreOptions {
  /** The effective uid of this process (default process.geteuid()): only root chowns. */
  euid?: number | undefined;
}

interface FoundFile {
  key: string;
  path: string;
}

/** How often put makes its directory again when a delete removed it before the open. */
const OPEN_ATTEMPTS = 10;

export class FsStore implements Store.ObjectStore {
  readonly url: string;
  readonly capabilities: Store.StoreCapabilities = {
    atomicIfAbsent: true, // link(2) fails on an existing name
    atomicReplace: true, // rename(2)
    durableWhenVisible: false, // a writer may die between rename/link and the directory fsync
  };

  /** Set once the marker was seen: it is never removed. */
  private marked = false;
  private readonly euid: number | undefined;
  /** The repository owner, looked up on the first put (see ownerOfRoot). */
  private owner: Promise<Owner> | undefined;

  constructor(
    readonly root: string,
    options: FsStoreOptions = {},
  ) {
    this.url = `file://${root}`;
    this.euid = "euid" in options ? options.euid : process.geteuid?.();
  }

  /**
   * The owner and group put gives what it creates: the repository root's (or its nearest
   * existing ancestor's, before the root exists), when this process is root and that
   * owner is not. Looked up once: the first put is the one that may create the root.
   */
  private ownerOfRoot(): Promise<Owner> {
    if (this.euid !== 0) return Promise.resolve(undefined);
    this.owner ??= (async () => {
      for (let at = resolve(this.root); ; at = dirname(at)) {
        try {
          const info = await stat(at);
          return info.uid === 0 && info.gid === 0 ? undefined : { uid: info.uid, gid: info.gid };
        } catch (error) {
          if (at === dirname(at) || !(isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")))
            return undefined;
        }
      }
    })();
    return this.owner;
  }

  /** chowns the directories mkdir created, from `first` down to `last`. */
  private async chownCreated(owner: Owner, first: string, last: string): Promise<void> {
    if (!owner) return;
    for (let at = last; at.length >= first.length; at = dirname(at)) {
      await chown(at, owner.uid, owner.gid);
      if (at === first || at === dirname(at)) break;
    }
  }

  private path(key: string): string {
    assertValidKey(key);
    return join(this.root, key);
  }

  async head(key: string): Promise<Store.ObjectInfo | undefined> {
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

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    const { info, body } = await this.getFrom(key, 0);
    return { info, body };
  }

  async getFrom(
    key: string,
    from: number,
  ): Promise<{ info: Store.ObjectInfo; body: Readable; start: number }> {
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
      // In 1 MiB pieces (the default is 64 KiB): a restore reads hundreds of MB of bundles,
      // and each piece is a buffer and a turn of the stream on the thread that feeds the jobs.
      const start = Math.min(Math.max(0, from), size - headerBytes);
      const body = createReadStream("", {
        fd: handle,
        start: headerBytes + start,
        autoClose: true,
        highWaterMark: 1 << 20,
      });
      return { info: { key, size: size - headerBytes, metadata }, body, start };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    const path = this.path(key);
    const metadata = { ...(options.metadata ?? {}) };
    assertValidMetadata(metadata);
    const dir = dirname(path);
    const tmp = join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
    const header = encodeHeader(metadata);
    if (!header) {
      throw new StorageError(
        `metadata of ${key} is too large for a local object header (${HEADER_BYTES} bytes)`,
        { transient: false },
      );
    }
    const owner = await this.ownerOfRoot();
    let size = 0;
    try {
      const handle = await this.openInNewDirectory(dir, tmp, owner);
      try {
        if (owner) await handle.chown(owner.uid, owner.gid);
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
    // Written and fsynced by this call: reading it back would only read the page cache.
    return { key, size, metadata, verified: true };
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    // Walk only the deepest directory that the prefix names completely.
    const slash = prefix.lastIndexOf("/");
    const base = slash === -1 ? "" : prefix.slice(0, slash);
    if (base !== "") assertValidKey(base);
    const found: FoundFile[] = [];
    await this.walk(base, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    const after = options.after;
    const files = after === undefined ? found : found.filter((f) => compareKeys(f.key, after) > 0);
    const describe = (await this.isMarked())
      ? (file: FoundFile) => this.statEntry(file)
      : (file: FoundFile) => this.openEntry(file);
    // A few files ahead in flight, yielded in key order; errors surface in that order too.
    const ahead: Promise<Store.ListEntry | undefined>[] = [];
    let next = 0;
    for (let at = 0; at < files.length; at++) {
      for (; next < files.length && next < at + LIST_AHEAD; next++) {
        const pending = describe(files[next] as FoundFile);
        pending.catch(() => undefined); // awaited below; not unhandled if the caller stops early
        ahead.push(pending);
      }
      const entry = await ahead.shift();
      if (entry) yield entry;
    }
  }

  /** A marked store: the body size is the file size minus the fixed header. */
  private async statEntry(file: FoundFile): Promise<Store.ListEntry | undefined> {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(file.path);
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
      throw this.failure(`cannot list ${file.path}`, error);
    }
    // Shorter than any padded object: not written with a padded header after all.
    if (info.size < HEADER_BYTES) return this.openEntry(file);
    return { key: file.key, size: info.size - HEADER_BYTES, lastModified: info.mtime };
  }

  /** An unmarked store: open the object once to learn its header length. */
  private async openEntry(file: FoundFile): Promise<Store.ListEntry | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(file.path, "r");
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return undefined;
      throw this.failure(`cannot read ${file.path}`, error);
    }
    try {
      let headerBytes = 0;
      try {
        ({ headerBytes } = await readHeader(handle, file.path));
      } catch (error) {
        // A damaged object is listed as it is (its file's size): one bad file must not
        // break every listing of its prefix (backup ids, verify); reading it fails.
        if (!(error instanceof StorageError && error.damaged)) throw error;
      }
      const info = await handle.stat();
      return { key: file.key, size: info.size - headerBytes, lastModified: info.mtime };
    } finally {
      await handle.close();
    }
  }

  private async isMarked(): Promise<boolean> {
    if (this.marked) return true;
    try {
      const text = await readFile(join(this.root, MARKER_NAME), "utf8");
      const marker = JSON.parse(text) as { headerBytes?: unknown };
      this.marked = marker.headerBytes === HEADER_BYTES;
    } catch {
      // Missing or unreadable: list opens the objects, which is slower but always right.
    }
    return this.marked;
  }

  /**
   * Whether put's mkdir just made the store's first directory: it created the root itself
   * (or above it), or the first directory in a root that holds nothing else.
   */
  private async isNewStore(created: string): Promise<boolean> {
    const root = resolve(this.root);
    const first = resolve(created);
    if (root === first || root.startsWith(`${first}/`)) return true;
    if (dirname(first) !== root) return false;
    try {
      const names = await readdir(root);
      return names.every(
        (name) => name === basename(first) || name.startsWith(".tmp-") || name.startsWith(".pgha"),
      );
    } catch {
      return false;
    }
  }

  /** Writes the marker atomically; a failure only leaves list on its slower path. */
  private async writeMarker(owner: Owner): Promise<void> {
    const tmp = join(this.root, `.tmp-${randomBytes(6).toString("hex")}`);
    try {
      const handle = await open(tmp, "wx", 0o640);
      try {
        if (owner) await handle.chown(owner.uid, owner.gid);
        await writeAll(handle, Buffer.from(MARKER_TEXT));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, join(this.root, MARKER_NAME));
      await syncDirectory(this.root);
      this.marked = true;
    } catch {
      await unlink(tmp).catch(() => undefined);
    }
  }

  private absoluteDir(relDir: string): string {
    return relDir === "" ? this.root : join(this.root, relDir);
  }

  /** A directory's entries; none when it does not exist (an empty prefix). */
  private async entriesOf(relDir: string): Promise<import("node:fs").Dirent[]> {
    const absDir = this.absoluteDir(relDir);
    try {
      return await readdir(absDir, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) return [];
      throw this.failure(`cannot list ${absDir}`, error);
    }
  }

  private async walk(relDir: string, prefix: string, out: FoundFile[]): Promise<void> {
    const absDir = this.absoluteDir(relDir);
    for (const entry of await this.entriesOf(relDir)) {
      // In-flight writes and the store's own files are not objects.
      if (entry.name.startsWith(".tmp-") || entry.name.startsWith(".pgha")) continue;
      const key = relDir === "" ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) {
          await this.walk(key, prefix, out);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push({ key, path: join(absDir, entry.name) });
      }
    }
  }

  async listLeftovers(prefix: string, before: Date): Promise<Store.Leftover[]> {
    const slash = prefix.lastIndexOf("/");
    const base = slash === -1 ? "" : prefix.slice(0, slash);
    if (base !== "") assertValidKey(base);
    const out: Store.Leftover[] = [];
    await this.walkLeftovers(base, prefix, before, out);
    return out.sort((a, b) => compareKeys(a.path, b.path));
  }

  private async walkLeftovers(
    relDir: string,
    prefix: string,
    before: Date,
    out: Store.Leftover[],
  ): Promise<void> {
    const absDir = this.absoluteDir(relDir);
    for (const entry of await this.entriesOf(relDir)) {
      const path = relDir === "" ? entry.name : `${relDir}/${entry.name}`;
      if (entry.name.startsWith(".tmp-")) {
        // In a directory under the prefix, or in the one the prefix ends in.
        const base = prefix.slice(0, Math.max(0, prefix.lastIndexOf("/")));
        if (!entry.isFile() || !(`${relDir}/`.startsWith(prefix) || relDir === base)) continue;
        const info = await stat(join(absDir, entry.name)).catch(() => undefined);
        if (info && info.mtime < before)
          out.push({ path, size: info.size, lastModified: info.mtime });
      } else if (!entry.name.startsWith(".pgha") && entry.isDirectory()) {
        if (`${path}/`.startsWith(prefix) || prefix.startsWith(`${path}/`))
          await this.walkLeftovers(path, prefix, before, out);
      }
    }
  }

  async deleteLeftover(leftover: Store.Leftover): Promise<void> {
    const slash = leftover.path.lastIndexOf("/");
    const name = leftover.path.slice(slash + 1);
    if (slash !== -1) assertValidKey(leftover.path.slice(0, slash));
    if (!/^\.tmp-[A-Za-z0-9]+$/.test(name)) {
      throw new StorageError(`${leftover.path} is not a leftover of this store`, {
        transient: false,
      });
    }
    const path = join(this.root, leftover.path);
    try {
      await unlink(path);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return;
      throw this.failure(`cannot delete ${path}`, error);
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

  /**
   * Makes `dir` (and its parents) and opens `tmp` in it. A delete removes the directories
   * it leaves empty, so one may vanish while mkdir makes the next one, or before the open:
   * then both again.
   */
  private async openInNewDirectory(dir: string, tmp: string, owner: Owner): Promise<FileHandle> {
    for (let attempt = 1; ; attempt++) {
      let created: string | undefined;
      try {
        created = await mkdir(dir, { recursive: true });
        if (created !== undefined) {
          await this.chownCreated(owner, created, dir);
          // A new directory entry is durable only once its parent is fsynced.
          await syncCreatedDirectories(created, dir);
        }
      } catch (error) {
        // A delete's rmdir of a parent mkdir had just made, or was about to go into.
        if (isErrno(error, "ENOENT") && attempt < OPEN_ATTEMPTS) continue;
        throw this.failure(`cannot create ${dir}`, error);
      }
      if (created !== undefined && (await this.isNewStore(created))) await this.writeMarker(owner);
      try {
        return await open(tmp, "wx", 0o640);
      } catch (error) {
        if (!isErrno(error, "ENOENT") || attempt >= OPEN_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Deletes the object, then the directories that leaves empty, up to the root (not it):
   * as in a bucket, where a prefix exists only while objects are under it, a deleted
   * backup leaves no empty backups/<id>/ behind. rmdir(2) removes only an empty
   * directory, so nothing written meanwhile is touched; a put whose directory vanished
   * before its open makes it again (openInNewDirectory).
   */
  async delete(key: string): Promise<void> {
    const path = this.path(key);
    try {
      await unlink(path);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return;
      throw this.failure(`cannot delete ${path}`, error);
    }
    const root = resolve(this.root);
    for (let at = dirname(resolve(path)); at.startsWith(root + sep); at = dirname(at)) {
      try {
        await rmdir(at);
      } catch {
        return; // not empty (the usual case), gone, or not ours to remove
      }
    }
  }

  private failure(what: string, error: unknown): StorageError {
    const denied = isErrno(error, "EACCES") || isErrno(error, "EPERM");
    return new StorageError(`${what}: ${describeSystemError(error)}`, {
      transient: false,
      cause: error,
      ...(denied
        ? {
            hint: `the repository must be writable by the user running pgha (archive_command runs as the PostgreSQL server user; pgha run as root gives what it creates the owner of the repository's root directory): chown -R postgres: ${this.root}`,
          }
        : {}),
    });
  }
}

/** The padded header line for metadata, or undefined when it does not fit in HEADER_BYTES. */
function encodeHeader(metadata: Record<string, string>): Buffer | undefined {
  const line = `${MAGIC}${JSON.stringify(metadata)}`;
  const length = Buffer.byteLength(line);
  if (length + 1 > HEADER_BYTES) return undefined;
  return Buffer.from(`${line}${" ".repeat(HEADER_BYTES - 1 - length)}\n`);
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
      damaged: true,
      hint: "files in a local repository must only be written by pgha",
    });
  }
  let metadata: Record<string, string>;
  try {
    metadata = JSON.parse(line.slice(MAGIC.length)) as Record<string, string>;
  } catch {
    throw new StorageError(`${path} has a corrupt header`, { transient: false, damaged: true });
  }
  return { metadata, headerBytes: newline + 1 };
}
