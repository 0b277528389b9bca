/**
 * One file into a bundle's tar stream (pack-bundle.ts): what the ways of packing a file
 * share, and the plain way, the whole file. Every file's sha256 is taken from exactly the
 * bytes put into the tar.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { BackupFileEntry } from "../repository/backup-manifest.js";
import { type BlockDecision, BlockMapper } from "./block-mapper.js";
import { readWalkedSize } from "./read-walked-size.js";
import { encodeTarHeader, padding } from "./tar-header.js";
import type { WalkEntry } from "./walk.js";

/** The tar stream of the bundle being packed. */
export interface TarSink {
  /** Puts tar bytes in; `bytes` may be reused once this returns. */
  put(bytes: Uint8Array): void;
  /** Hands what was compressed to the sink (waits while its window is full). */
  flush(): Promise<void>;
  progress(bytes: number): void;
}

/** What an incremental backup compares a file with: its parent's manifest entry. */
export interface ParentFile {
  size: number;
  sha256: string;
  /** The backup whose bundles hold the file whole (the parent, or its `from`). */
  holder: string;
  /** The parent's block map (base64, as in the manifest), if it has one. */
  blocks?: { hashes: string; from: string };
  /** The parent stored the file whole, this many of its blocks having changed. */
  changed?: number;
  /** The parent's copy's modification time (as the manifest has it). */
  mtime?: string;
}

export interface FileToPack {
  entry: WalkEntry;
  absPath: string;
  /** A relation file: gets a block map. */
  mapped: boolean;
  chainIndex: number;
  parent: ParentFile | undefined;
}

/** What the manifest says of a packed file, besides what the walk saw. */
export type PackedFile = Pick<BackupFileEntry, "sha256" | "stored" | "from" | "blocks" | "changed">;

const ZEROS = Buffer.alloc(512);

/** The tar header of a file entry of `size` bytes (the file's, or its delta entry's). */
export function putTarHeader(tar: TarSink, entry: WalkEntry, size: number): void {
  tar.put(
    encodeTarHeader({ name: entry.path, type: "file", size, mode: entry.mode, mtime: entry.mtime }),
  );
}

/** The zeros after an entry of `size` bytes, up to the tar's next 512-byte record. */
export function putTarPadding(tar: TarSink, size: number): void {
  const pad = padding(size);
  if (pad > 0) tar.put(ZEROS.subarray(0, pad));
}

/**
 * The whole file into the tar (with its block map if it is a relation file); `decide`
 * sees each block as it passes (and names the backup that holds it).
 */
export async function packWhole(
  file: FileToPack,
  handle: FileHandle,
  buffers: readonly [Buffer, Buffer],
  tar: TarSink,
  decide?: BlockDecision,
  /** Bytes of the file a read before this one already told progress of. */
  counted = 0,
): Promise<PackedFile> {
  const { entry } = file;
  const hash = createHash("sha256");
  const map = file.mapped ? new BlockMapper(entry.size, file.chainIndex, decide) : undefined;
  let told = counted;
  putTarHeader(tar, entry, entry.size);
  await readWalkedSize(entry.size, handle, buffers, async (chunk) => {
    hash.update(chunk);
    await map?.write(chunk);
    tar.put(chunk);
    const again = Math.min(told, chunk.length);
    told -= again;
    tar.progress(chunk.length - again);
    await tar.flush();
  });
  putTarPadding(tar, entry.size);
  return { sha256: hash.digest("hex"), ...(map ? { blocks: map.end() } : {}) };
}
