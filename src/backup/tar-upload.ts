/**
 * One tar stream built file by file on this thread and streamed through zstd into one
 * repository object (multipart on S3): no local copy, memory bounded by a few parts. A
 * backup uses it for the data directory's last bundle (pg_control, backup_label,
 * tablespace_map), which is built around the backup's stop; the other bundles are built
 * by job workers (pack-bundle.ts). Every file's sha256 is taken from exactly the bytes put into
 * the tar, and the stored bytes get a sha256 for the manifest (the tar stream itself
 * needs none: its files are each checked, and its size is recorded).
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { pipeline, Readable, Transform } from "node:stream";
import * as tar from "tar-stream";
import { compressStream } from "../compress/codec.js";
import type { Compression } from "../compress/compression.js";
import { describeSystemError, LocalIoError, PghaError } from "../errors.js";
import type { BackupFileEntry, BackupObjectEntry } from "../repository/backup-manifest.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { WalkEntry } from "./walk.js";

const READ_CHUNK = 4 << 20;

/** The writable side of one tar entry (a streamx Writable). */
interface EntrySink {
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: "drain", listener: () => void): unknown;
}

export class TarUpload {
  private readonly pack = tar.pack();
  private readonly storedHash = createHash("sha256");
  private rawSize = 0;
  private storedSize = 0;
  private readonly upload: Promise<unknown>;
  private failure: Error | undefined;
  /** Whoever waits on the tar stream right now: told at once if the upload fails. */
  private readonly waiting = new Set<(error: Error) => void>();
  private readonly files: BackupFileEntry[] = [];

  private constructor(
    readonly part: string,
    readonly key: string,
    private readonly compression: Compression,
    compress: Transform,
    store: ObjectStore,
    private readonly onBytes: (n: number) => void,
  ) {
    const count = (add: (n: number) => void, hash?: ReturnType<typeof createHash>) =>
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash?.update(chunk);
          add(chunk.length);
          done(null, chunk);
        },
      });
    const body = pipeline(
      Readable.from(this.pack),
      count((n) => {
        this.rawSize += n;
      }),
      compress,
      count((n) => {
        this.storedSize += n;
      }, this.storedHash),
      (error) => {
        if (error) this.fail(error);
      },
    );
    this.upload = store.put(key, body, {
      metadata: { "pgha-format": "1", "pgha-compression": compression.algorithm },
    });
    // Keep an early failure from being unhandled while entries are still being added.
    this.upload.catch((error: Error) => this.fail(error));
  }

  static async open(
    store: ObjectStore,
    key: string,
    part: string,
    compression: Compression,
    onBytes: (n: number) => void,
  ): Promise<TarUpload> {
    const compress = await compressStream(compression);
    return new TarUpload(part, key, compression, compress, store, onBytes);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const reject of this.waiting) reject(this.failure);
    this.waiting.clear();
  }

  /** Waits for a tar-stream event, or fails as soon as the upload does. */
  private wait(
    register: (resolve: () => void, reject: (error: Error) => void) => void,
  ): Promise<void> {
    this.check();
    return new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        this.waiting.delete(fail);
        if (error) reject(error);
        else resolve();
      };
      const fail = (error: Error) => done(error);
      this.waiting.add(fail);
      register(() => done(), fail);
    });
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private async entry(
    header: Partial<tar.Header> & { name: string },
    write?: (entry: EntrySink) => Promise<void>,
  ): Promise<void> {
    await this.wait((resolve, reject) => {
      const entry = this.pack.entry(header, (error) => (error ? reject(error) : resolve()));
      // The tar stream reports a failed entry (an upload that broke) here, not to the callback.
      entry.on("error", reject);
      if (!write) return;
      write(entry as unknown as EntrySink).then(
        () => (entry as unknown as EntrySink).end(),
        (error: Error) => {
          entry.destroy(error);
          reject(error);
        },
      );
    });
  }

  async addDirectory(item: WalkEntry): Promise<void> {
    await this.entry({ name: item.path, type: "directory", mode: item.mode, mtime: item.mtime });
  }

  async addSymlink(item: WalkEntry): Promise<void> {
    await this.entry({
      name: item.path,
      type: "symlink",
      linkname: item.linkTarget ?? "",
      mode: item.mode,
      mtime: item.mtime,
    });
  }

  /**
   * Adds a file with the size the walk saw. A file that shrank is padded with zeros and
   * one that grew is cut at that size: WAL replay from the backup's start repairs both.
   * Returns false when the file vanished (dropped relation, finished temp file).
   */
  async addFile(item: WalkEntry, absPath: string): Promise<boolean> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(absPath, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
        cause: error,
      });
    }
    const hash = createHash("sha256");
    try {
      await this.entry(
        { name: item.path, type: "file", size: item.size, mode: item.mode, mtime: item.mtime },
        async (entry) => {
          // Read ahead: the next chunk is read while this one is hashed and handed on.
          const read = (at: number) => {
            const want = Math.min(READ_CHUNK, item.size - at);
            // A fresh buffer per chunk: the tar stream holds it until it is compressed.
            const buffer = Buffer.allocUnsafeSlow(want);
            return handle.read(buffer, 0, want, at).then(({ bytesRead }) =>
              // A file that shrank reads short or empty: the tar gets zeros up to its size.
              bytesRead === 0 ? buffer.fill(0) : buffer.subarray(0, bytesRead),
            );
          };
          let done = 0;
          // A read that fails while this loop waits is reported when it is awaited, not as
          // an unhandled rejection.
          const ahead = (at: number) => {
            const promise = read(at);
            promise.catch(() => undefined);
            return promise;
          };
          let next = item.size > 0 ? ahead(0) : undefined;
          while (next) {
            const chunk = await next;
            done += chunk.length;
            next = done < item.size ? ahead(done) : undefined;
            hash.update(chunk);
            this.onBytes(chunk.length);
            if (!entry.write(chunk)) await this.wait((resolve) => entry.once("drain", resolve));
          }
        },
      );
    } catch (error) {
      // A storage failure surfaces here too: keep its own code.
      if (error instanceof PghaError) throw error;
      if (this.failure) throw this.failure;
      throw new LocalIoError(`cannot read ${absPath}: ${describeSystemError(error)}`, {
        cause: error,
      });
    } finally {
      await handle.close();
    }
    this.files.push({
      part: this.part,
      path: item.path,
      size: item.size,
      mode: item.mode,
      mtime: item.mtime.toISOString(),
      sha256: hash.digest("hex"),
    });
    return true;
  }

  /** Adds generated content (backup_label, tablespace_map). */
  async addBuffer(path: string, data: Buffer, mode = 0o600): Promise<void> {
    const mtime = new Date();
    await this.entry(
      { name: path, type: "file", size: data.length, mode, mtime },
      async (entry) => {
        entry.write(data);
      },
    );
    this.files.push({
      part: this.part,
      path,
      size: data.length,
      mode,
      mtime: mtime.toISOString(),
      sha256: createHash("sha256").update(data).digest("hex"),
    });
  }

  /** Ends the tar; resolves once the object is stored, with it and its files' entries. */
  async finish(): Promise<{ object: BackupObjectEntry; files: BackupFileEntry[] }> {
    this.check();
    this.pack.finalize();
    await this.upload;
    this.check();
    const files = this.files;
    const object: BackupObjectEntry = {
      part: this.part,
      key: this.key,
      compression: this.compression.algorithm,
      rawSize: this.rawSize,
      storedSize: this.storedSize,
      storedSha256: this.storedHash.digest("hex"),
    };
    return { object, files };
  }

  /** Stops the upload (the store aborts a multipart upload) and forgets the object. */
  async abort(error: Error): Promise<void> {
    this.pack.destroy(error);
    await this.upload.catch(() => undefined);
  }
}
