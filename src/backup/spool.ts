/**
 * Spool: bytes kept aside while a file is read, to be put into the tar only once the whole
 * file is read (the changed blocks of a delta entry, whose tar header needs their count).
 * The bytes put are then exactly the bytes hashed, even if the file changes meanwhile,
 * with no second read.
 *
 * Fixed memory: one buffer of MEMORY_BYTES; past it, the bytes go to a temporary file in
 * the system's temporary directory (mode 0600, unlinked at once: nothing is left behind by
 * a crash), reused for every file of the bundle. At most one relation segment (1 GiB by
 * default) is spooled at a time. The buffer is also the file's write buffer: the file is
 * written a full buffer at a time (the changed blocks come 8 KiB at a time, and a write
 * call for each made an incremental backup spend more time in write() than in hashing).
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSystemError, LocalIoError } from "../errors.js";

export const MEMORY_BYTES = 1 << 20;

export class Spool {
  private readonly memory: Buffer;
  private used = 0;
  private file: FileHandle | undefined;
  private fileBytes = 0;

  constructor(
    memoryBytes = MEMORY_BYTES,
    private readonly directory = tmpdir(),
  ) {
    this.memory = Buffer.allocUnsafeSlow(memoryBytes);
  }

  get length(): number {
    return this.used + this.fileBytes;
  }

  /** Keeps a copy of `bytes` (which may be reused once this resolves). */
  async append(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) {
      if (this.used === this.memory.length) await this.spill();
      const take = Math.min(rest.length, this.memory.length - this.used);
      this.memory.set(rest.subarray(0, take), this.used);
      this.used += take;
      rest = rest.subarray(take);
    }
  }

  /** The full memory buffer onto the end of the file. */
  private async spill(): Promise<void> {
    const file = await this.openFile();
    try {
      let at = 0;
      while (at < this.used) {
        const { bytesWritten } = await file.write(this.memory, at, this.used - at, this.fileBytes);
        at += bytesWritten;
        this.fileBytes += bytesWritten;
      }
      this.used = 0;
    } catch (error) {
      throw new LocalIoError(
        `cannot write a temporary file in ${this.directory}: ${describeSystemError(error)}`,
        {
          cause: error,
          hint: "an incremental backup keeps the changed blocks of one file at a time there (TMPDIR)",
        },
      );
    }
  }

  /** Hands every byte kept, in order, to `put` (through `buffer`), then empties the spool. */
  async drain(buffer: Buffer, put: (bytes: Uint8Array) => Promise<void>): Promise<void> {
    // The file holds the older bytes, the memory the newest.
    let at = 0;
    while (at < this.fileBytes) {
      const want = Math.min(buffer.length, this.fileBytes - at);
      const { bytesRead } = await (this.file as FileHandle).read(buffer, 0, want, at);
      if (bytesRead === 0)
        throw new LocalIoError(`a temporary file in ${this.directory} was cut short`);
      await put(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (this.used > 0) await put(this.memory.subarray(0, this.used));
    this.clear();
  }

  /** Forgets what was kept. */
  clear(): void {
    this.used = 0;
    this.fileBytes = 0;
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    this.clear();
    await file?.close();
  }

  private async openFile(): Promise<FileHandle> {
    if (this.file) return this.file;
    const path = join(
      this.directory,
      `pgha-spool-${process.pid}-${randomBytes(6).toString("hex")}`,
    );
    try {
      this.file = await open(path, "wx+", 0o600);
      await unlink(path);
    } catch (error) {
      await this.file?.close().catch(() => undefined);
      this.file = undefined;
      throw new LocalIoError(
        `cannot create a temporary file in ${this.directory}: ${describeSystemError(error)}`,
        {
          cause: error,
          hint: "an incremental backup keeps the changed blocks of one file at a time there (TMPDIR)",
        },
      );
    }
    return this.file;
  }
}
