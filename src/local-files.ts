/**
 * Helpers for writing local files durably: the local object store, wal-fetch's delivery
 * into pg_wal and restores into a data directory all use them.
 */
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";

/** FileHandle.write may write less than asked (quota, NFS): loop until all is written. */
export async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** fsyncs a directory: a new, renamed or removed entry in it is durable only after this. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs the parent of every directory from `first` (the first one mkdir created) down to `last`. */
export async function syncCreatedDirectories(first: string, last: string): Promise<void> {
  const chain: string[] = [];
  for (let at = last; at.length >= first.length; at = dirname(at)) {
    chain.unshift(at);
    if (at === first || at === dirname(at)) break;
  }
  for (const created of chain) await syncDirectory(dirname(created));
}

export function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}
