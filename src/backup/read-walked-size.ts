/**
 * How a backup job reads a file: the size the walk saw, whatever the file's size is now.
 * A file that shrank reads as zeros up to that size; one that grew is cut there (WAL
 * replay from the backup's start repairs both).
 */
import type { FileHandle } from "node:fs/promises";

/**
 * Reads bytes 0..size of the file in chunks, the next read running while `each` handles
 * the current chunk (which it may not keep once it resolves).
 */
export async function readWalkedSize(
  size: number,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  each: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  // A read that fails while this loop waits is reported when it is awaited.
  const ahead = (buffer: Buffer, at: number) => {
    const promise = readAt(handle, buffer, Math.min(buffer.length, size - at), at);
    promise.catch(() => undefined);
    return promise;
  };
  let done = 0;
  let which = 0;
  let next = size > 0 ? ahead(buffers[0], 0) : undefined;
  try {
    while (next) {
      const chunk = await next;
      done += chunk.length;
      which ^= 1;
      // Read the next chunk into the other buffer while this one is hashed and compressed.
      next = done < size ? ahead(buffers[which] as Buffer, done) : undefined;
      await each(chunk);
    }
  } finally {
    // `each` failed: the read ahead finishes before the caller may use its buffer again.
    await next?.catch(() => undefined);
  }
}

/** Reads bytes 0..size through one buffer, one chunk after the other. */
export async function readPrefix(
  size: number,
  handle: FileHandle,
  buffer: Buffer,
  each: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  let done = 0;
  while (done < size) {
    const chunk = await readAt(handle, buffer, Math.min(buffer.length, size - done), done);
    done += chunk.length;
    await each(chunk);
  }
}

/** Up to `want` bytes at `at`; none (the file shrank): `want` zeros. */
async function readAt(handle: FileHandle, buffer: Buffer, want: number, at: number) {
  const { bytesRead } = await handle.read(buffer, 0, want, at);
  return bytesRead === 0 ? buffer.subarray(0, want).fill(0) : buffer.subarray(0, bytesRead);
}
