/**
 * fetchBaseBackup: rebuild a data directory (and its tablespaces) from a backup. Every
 * file is checked against the manifest's sha256 as it is written, and every object's
 * stored sha256 and tar size once it is read; any mismatch fails the fetch and empties
 * the targets again. Symlinks from the tar are made last, so no entry can write through
 * one. It writes no recovery configuration (the restore command does that). Targets
 * must be empty.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, open, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { isAbsolute, join, normalize, resolve } from "node:path";
import { pipeline, type Readable, Transform } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar-stream";
import { decompressStream } from "../compress/codec.js";
import {
  describeSystemError,
  IntegrityError,
  LocalIoError,
  PghaError,
  RefusedError,
  StorageError,
  UsageError,
} from "../errors.js";
import { writeAll } from "../local-files.js";
import type { Logger } from "../log.js";
import type {
  BackupFileEntry,
  BackupManifest,
  BackupTablespace,
} from "../repository/backup-manifest.js";
import type { ObjectStore } from "../storage/object-store.js";

export interface FetchBackupDeps {
  store: ObjectStore;
  log: Logger;
  progress: (doneBytes: number, totalBytes: number) => void;
}

export interface FetchResult {
  files: number;
  bytes: number;
  tablespaces: { oid: string; name: string; location: string }[];
}

/** Parses --tablespace-map values "NAME_OR_OID=DIR". */
export function parseTablespaceMap(values: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const value of values) {
    const at = value.indexOf("=");
    const dir = value.slice(at + 1);
    if (at <= 0 || !isAbsolute(dir)) {
      throw new UsageError(
        `invalid --tablespace-map '${value}'`,
        "use NAME=/absolute/dir or OID=/absolute/dir",
      );
    }
    map.set(value.slice(0, at), normalize(dir));
  }
  return map;
}

export async function fetchBaseBackup(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  target: string,
  remap: Map<string, string>,
): Promise<FetchResult> {
  const root = resolve(target);
  for (const ts of manifest.tablespaces) {
    if (!/^\d+$/.test(ts.oid))
      throw new IntegrityError(`backup ${manifest.id} names a tablespace with oid '${ts.oid}'`);
  }
  for (const key of remap.keys()) {
    if (!manifest.tablespaces.some((ts) => ts.oid === key || ts.name === key)) {
      throw new UsageError(
        `--tablespace-map names '${key}', which is not a tablespace of backup ${manifest.id}`,
        `its tablespaces: ${manifest.tablespaces.map((ts) => `${ts.name} (${ts.oid})`).join(", ") || "none"}`,
      );
    }
  }
  const tablespaces = manifest.tablespaces.map((ts) => ({
    ...ts,
    location: remap.get(ts.oid) ?? remap.get(ts.name) ?? ts.location,
  }));
  const targets = [root, ...tablespaces.map((ts) => ts.location)];
  for (const dir of targets) await requireEmpty(dir);
  try {
    return await restoreInto(deps, manifest, root, tablespaces);
  } catch (error) {
    // The targets were empty: remove what this attempt wrote, so no half-restored data
    // directory is left for someone to start.
    for (const dir of targets) await emptyDirectory(dir);
    if (error instanceof PghaError) throw error;
    throw new LocalIoError(`cannot restore into ${root}: ${describeSystemError(error)}`, {
      cause: error,
    });
  }
}

async function emptyDirectory(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) await rm(join(dir, name), { recursive: true, force: true });
}

async function restoreInto(
  deps: FetchBackupDeps,
  manifest: BackupManifest,
  root: string,
  tablespaces: BackupTablespace[],
): Promise<FetchResult> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  for (const ts of tablespaces) await mkdir(ts.location, { recursive: true, mode: 0o700 });

  const expected = new Map<string, BackupFileEntry>();
  for (const file of manifest.files) expected.set(`${file.part}\0${file.path}`, file);
  const seen = new Set<string>();
  const links: { path: string; target: string }[] = [];
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    deps.progress(done, manifest.rawBytes);
  };

  for (const object of manifest.objects) {
    const dest =
      object.part === "base" ? root : tablespaces.find((ts) => ts.oid === object.part)?.location;
    if (!dest)
      throw new IntegrityError(
        `backup ${manifest.id} has an object for unknown tablespace ${object.part}`,
      );
    const { body } = await deps.store.get(object.key);
    const storedHash = createHash("sha256");
    let storedSize = 0;
    let rawSize = 0;
    // pipeline() destroys every stream with the first error: remember where it started.
    let origin: "body" | "decompress" | undefined;
    body.once("error", () => {
      origin ??= "body";
    });
    const decompress = await decompressStream(object.compression);
    decompress.once("error", () => {
      origin ??= "decompress";
    });
    const source = pipeline(
      body,
      tap((chunk) => {
        storedHash.update(chunk);
        storedSize += chunk.length;
      }),
      decompress,
      tap((chunk) => {
        rawSize += chunk.length;
        onBytes(chunk.length);
      }),
      () => undefined,
    );
    try {
      await extractTar(
        source,
        dest,
        links,
        (path) => {
          const entry = expected.get(`${object.part}\0${path}`);
          if (entry) seen.add(`${object.part}\0${path}`);
          return entry;
        },
        object.key,
      );
    } catch (error) {
      if (error instanceof PghaError) throw error;
      const why = error instanceof Error ? error.message : String(error);
      if (origin === "decompress")
        throw new IntegrityError(
          `${deps.store.url}/${object.key} is corrupt: cannot decompress (${why})`,
        );
      if (origin === "body")
        throw new StorageError(`reading ${deps.store.url}/${object.key} failed: ${why}`, {
          transient: true,
          cause: error,
        });
      // Anything else while extracting is the tar data or the local disk.
      if ((error as NodeJS.ErrnoException).code)
        throw new LocalIoError(`cannot write into ${dest}: ${describeSystemError(error)}`, {
          cause: error,
        });
      throw new IntegrityError(`${deps.store.url}/${object.key} is not a valid tar stream: ${why}`);
    }
    if (
      storedSize !== object.storedSize ||
      storedHash.digest("hex") !== object.storedSha256 ||
      rawSize !== object.rawSize
    ) {
      throw new IntegrityError(
        `${deps.store.url}/${object.key} does not match its manifest checksums`,
      );
    }
  }
  const missing = manifest.files.filter((f) => !seen.has(`${f.part}\0${f.path}`));
  if (missing.length > 0) {
    throw new IntegrityError(
      `backup ${manifest.id} is missing ${missing.length} files listed in its manifest (first: ${missing[0]?.path})`,
    );
  }

  for (const link of links) await symlink(link.target, link.path);
  // PostgreSQL recreates pg_tblspc links from tablespace_map at recovery start, so the map
  // must name the (possibly remapped) locations; the links are made now as well.
  if (tablespaces.length > 0) {
    await mkdir(join(root, "pg_tblspc"), { recursive: true, mode: 0o700 });
    for (const ts of tablespaces) await symlink(ts.location, join(root, "pg_tblspc", ts.oid));
    if (manifest.tablespaceMap !== null) {
      await writeFile(
        join(root, "tablespace_map"),
        tablespaces.map((ts) => `${ts.oid} ${ts.location}\n`).join(""),
        { mode: 0o600 },
      );
    }
  }
  for (const dir of [root, ...tablespaces.map((ts) => ts.location)]) {
    await promisify(execFile)("sync", ["-f", dir]).catch(() => undefined);
  }
  deps.log.info(`backup ${manifest.id}: ${seen.size} files (${done} bytes) restored into ${root}`);
  return { files: seen.size, bytes: done, tablespaces };
}

function tap(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      done(null, chunk);
    },
  });
}

async function requireEmpty(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new LocalIoError(`cannot read ${dir}: ${describeSystemError(error)}`);
  }
  if (names.length > 0) {
    throw new RefusedError(
      `${dir} is not empty; nothing was written`,
      "fetch into a new or empty directory (pgha never overwrites a data directory)",
    );
  }
}

function safePath(root: string, name: string): string {
  const clean = name.replace(/\/+$/, "");
  const full = resolve(root, clean);
  if (isAbsolute(clean) || (full !== root && !full.startsWith(`${root}/`))) {
    throw new IntegrityError(`backup tar entry '${name}' points outside the target`);
  }
  return full;
}

async function extractTar(
  source: Readable,
  dest: string,
  links: { path: string; target: string }[],
  lookup: (path: string) => BackupFileEntry | undefined,
  key: string,
): Promise<void> {
  const extract = tar.extract();
  const pump = (async () => {
    for await (const chunk of source) {
      if (!extract.write(chunk as Buffer))
        await new Promise<void>((r) => extract.once("drain", () => r()));
    }
    (extract as unknown as { end(): void }).end();
  })().catch((error: Error) => {
    extract.destroy(error);
  });
  try {
    await extractEntries(extract, dest, links, lookup, key);
  } catch (error) {
    source.destroy();
    extract.destroy(error as Error);
    throw error;
  }
  await pump;
}

async function extractEntries(
  extract: tar.Extract,
  dest: string,
  links: { path: string; target: string }[],
  lookup: (path: string) => BackupFileEntry | undefined,
  key: string,
): Promise<void> {
  for await (const entry of extract) {
    const { header } = entry;
    const path = safePath(dest, header.name);
    if (header.type === "directory") {
      await mkdir(path, { recursive: true, mode: header.mode });
      if ((await lstat(path)).isDirectory()) await chmod(path, header.mode & 0o7777);
      entry.resume();
    } else if (header.type === "symlink") {
      // Made after every file is written, so no entry can write through a link.
      links.push({ path, target: header.linkname ?? "" });
      entry.resume();
    } else if (header.type === "file") {
      const name = header.name.replace(/\/+$/, "");
      const expected = lookup(name);
      if (!expected)
        throw new IntegrityError(`${key} holds '${name}', which its manifest does not list`);
      const hash = createHash("sha256");
      let size = 0;
      const handle = await open(path, "wx", header.mode & 0o7777);
      try {
        for await (const chunk of entry) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          await writeAll(handle, chunk as Buffer);
        }
      } finally {
        await handle.close();
      }
      if (size !== expected.size || hash.digest("hex") !== expected.sha256) {
        throw new IntegrityError(`${name} from ${key} does not match its manifest checksum`);
      }
    } else {
      throw new IntegrityError(`${key} holds an unexpected ${header.type} entry '${header.name}'`);
    }
  }
}
