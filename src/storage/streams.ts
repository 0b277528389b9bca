import { Readable } from "node:stream";
import { PghaError, StorageError } from "../errors.js";

/** A body that can be read whole in one call, faster than chunk by chunk (an encrypted object's). */
export interface WholeReadable extends Readable {
  readWhole(): Promise<Buffer>;
}

/**
 * What a body's failure while it is read (a connection reset, or closed early) is: the
 * store's transient failure, which a retry of the whole read may get past, never bad data.
 * A PghaError (an encrypted body that failed authentication) stays what it is.
 */
export function readFailure(what: string, error: unknown, hint?: string): PghaError {
  if (error instanceof PghaError) return error;
  const why = error instanceof Error ? error.message : String(error);
  return new StorageError(`reading ${what} failed: ${why}`, {
    transient: true,
    cause: error,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** Reads a whole stream into memory. Only for bodies known to be small. */
export async function readAll(stream: Readable): Promise<Buffer> {
  if (typeof (stream as Partial<WholeReadable>).readWhole === "function")
    return (stream as WholeReadable).readWhole();
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * Splits a stream into buffers of exactly `size` bytes (the last one shorter), pulling
 * only as much as the next buffer needs: this is what bounds multipart memory to a part.
 */
export async function* chunked(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream) {
    // A view, not a copy: the part is copied once, by concat.
    const bytes = chunk as Uint8Array;
    let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (pendingBytes + buf.length >= size) {
      const take = size - pendingBytes;
      pending.push(buf.subarray(0, take));
      yield Buffer.concat(pending);
      buf = buf.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (buf.length > 0) {
      pending.push(buf);
      pendingBytes += buf.length;
    }
  }
  if (pendingBytes > 0 || pending.length > 0) yield Buffer.concat(pending);
}

export function toReadable(body: Uint8Array | Readable): Readable {
  return body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
}
