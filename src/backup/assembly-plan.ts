/**
 * planAssembly: pure. Which backup of a chain each file, and each block of a block-mapped
 * file, is written from when backup B is restored from [...chain, B] (FORMAT.md,
 * "Incremental backups"). B's manifest alone decides: a block comes from the backup its
 * block map's `from` names, a whole file from B or from the backup its `from` names. What
 * no backup is named for (a superseded block, a file B no longer has) is read past, never
 * written. Files of a restore --delta that are already right (`keep`), and blocks of a
 * file that are already right (`reuse`), are not written either.
 *
 * A manifest that contradicts itself or its chain (a block from a backup that does not
 * hold the file, a hash list of the wrong length) fails the plan: nothing is downloaded.
 */
import { IntegrityError } from "../errors.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import {
  BLOCK_HASH_BYTES,
  blockCount,
  type ChainFileEntry,
  fileKey,
  filesOf,
} from "./chain-manifest.js";

/** What a job does with one tar entry of a member's object. */
export type EntryPlan =
  /** The entry is the complete file: write it as it comes (its sha256 is checked). */
  | { how: "whole" }
  /**
   * Write these blocks (ascending) of the entry at their offsets, each checked against its
   * hash (base64, 16 bytes per listed block); `delta`: the entry is a delta entry, else
   * the member's complete file. `size`: the restored file's size (its last block may be short).
   */
  | {
      how: "blocks";
      delta: boolean;
      blockSize: number;
      size: number;
      blocks: number[];
      hashes: string;
    };

export interface MemberPlan {
  manifest: BackupManifest;
  /** By tar path, per part: entries not listed are read past. */
  entries: Map<string, Map<string, EntryPlan>>;
  /**
   * By object (index in manifest.objects): its planned entries, where the manifest says
   * which files each object holds; an object with none is not read. Else undefined.
   */
  byObject: Map<string, EntryPlan>[] | undefined;
  /** Whether the member's directory and symlink entries make the restored tree (B's only). */
  structure: boolean;
  /** Bytes of file data written from this member. */
  bytes: number;
}

/** How a file of B gets into the target. */
export interface FileWrite {
  entry: ChainFileEntry;
  /**
   * keep: already right, not written; whole: streamed from one member's complete copy;
   * blocks: assembled block by block into a file made at its final size.
   */
  write: "keep" | "whole" | "blocks";
  /** blocks: how many blocks are written (the others are already right: `reuse`). */
  blocks: number;
  /** blocks: the existing file's content is reused (it is cut to size, not emptied). */
  reuse: boolean;
}

export interface Assembly {
  members: MemberPlan[];
  /** Every file of B, by fileKey. */
  files: Map<string, FileWrite>;
  kept: number;
  keptBytes: number;
  written: number;
  writtenBytes: number;
}

/**
 * `members` is [...chain, B], oldest first (B's chain order, checked). `reuse`: for a file
 * being rewritten in place, the blocks the target already has right.
 */
export function planAssembly(
  members: readonly BackupManifest[],
  keep: ReadonlySet<string> = new Set(),
  reuse: ReadonlyMap<string, ReadonlySet<number>> = new Map(),
): Assembly {
  const target = members.at(-1);
  if (!target) throw new Error("planAssembly needs at least the target backup");
  const plans: MemberPlan[] = members.map((manifest, at) => ({
    manifest,
    entries: new Map(),
    structure: at === members.length - 1,
    bytes: 0,
    byObject: undefined,
  }));
  const byKey = members.map((m) => new Map(filesOf(m).map((f) => [fileKey(f), f])));
  const indexOf = new Map(members.map((m, at) => [m.id, at]));
  const files = new Map<string, FileWrite>();
  const result: Assembly = {
    members: plans,
    files,
    kept: 0,
    keptBytes: 0,
    written: 0,
    writtenBytes: 0,
  };
  const bad = (file: ChainFileEntry, why: string) =>
    new IntegrityError(`backup ${target.id}: ${file.part}/${file.path}: ${why}`);
  const put = (at: number, file: ChainFileEntry, plan: EntryPlan, bytes: number) => {
    const member = plans[at] as MemberPlan;
    const part = member.entries.get(file.part) ?? new Map<string, EntryPlan>();
    member.entries.set(file.part, part);
    part.set(file.path, plan);
    member.bytes += bytes;
  };
  /** The member's own entry for the file, which must hold data (whole or blocks). */
  const holding = (at: number, file: ChainFileEntry): ChainFileEntry => {
    const own = byKey[at]?.get(fileKey(file));
    const id = members[at]?.id;
    if (!own) throw bad(file, `its manifest names backup ${id}, which does not have the file`);
    if (own.stored === "none")
      throw bad(file, `its manifest names backup ${id}, which does not hold the file's data`);
    return own;
  };

  for (const file of filesOf(target)) {
    const key = fileKey(file);
    if (keep.has(key)) {
      files.set(key, { entry: file, write: "keep", blocks: 0, reuse: false });
      result.kept++;
      result.keptBytes += file.size;
      continue;
    }
    result.written++;
    if (!file.blocks) {
      const source = file.stored === "none" ? file.from : target.id;
      const at = source === undefined ? undefined : indexOf.get(source);
      if (at === undefined)
        throw bad(
          file,
          `it is held by backup ${source ?? "(none named)"}, which is not in its chain`,
        );
      const own = holding(at, file);
      if (
        (own.stored ?? "whole") !== "whole" ||
        own.size !== file.size ||
        own.sha256 !== file.sha256
      )
        throw bad(file, `backup ${members[at]?.id} does not hold the same file whole`);
      put(at, file, { how: "whole" }, file.size);
      files.set(key, { entry: file, write: "whole", blocks: 0, reuse: false });
      result.writtenBytes += file.size;
      continue;
    }
    const { size: blockSize } = file.blocks;
    const count = blockCount(file.size, blockSize);
    const hashes = Buffer.from(file.blocks.hashes, "base64");
    const from = Buffer.from(file.blocks.from, "base64");
    if (!(blockSize > 0) || hashes.length !== count * BLOCK_HASH_BYTES || from.length !== count)
      throw bad(file, "its block map does not match its size");
    const right = reuse.get(key);
    const wanted = new Map<number, number[]>();
    for (let block = 0; block < count; block++) {
      if (right?.has(block)) continue;
      const at = from[block] as number;
      if (at >= members.length)
        throw bad(
          file,
          `block ${block} is from backup #${at}, past its chain of ${members.length}`,
        );
      const list = wanted.get(at) ?? [];
      wanted.set(at, list);
      list.push(block);
    }
    let written = 0;
    for (const [at, blocks] of wanted) {
      const own = holding(at, file);
      const bytes = blocks.reduce((n, b) => n + Math.min(blockSize, file.size - b * blockSize), 0);
      written += blocks.length;
      result.writtenBytes += bytes;
      // The member's copy is the file itself: stream it whole (one check: its sha256).
      if (
        wanted.size === 1 &&
        right === undefined &&
        (own.stored ?? "whole") === "whole" &&
        own.size === file.size &&
        own.sha256 === file.sha256
      ) {
        put(at, file, { how: "whole" }, bytes);
        files.set(key, { entry: file, write: "whole", blocks: 0, reuse: false });
        break;
      }
      const picked = Buffer.alloc(blocks.length * BLOCK_HASH_BYTES);
      blocks.forEach((b, i) => {
        hashes.copy(picked, i * BLOCK_HASH_BYTES, b * BLOCK_HASH_BYTES, (b + 1) * BLOCK_HASH_BYTES);
      });
      put(
        at,
        file,
        {
          how: "blocks",
          delta: own.stored === "blocks",
          blockSize,
          size: file.size,
          blocks,
          hashes: picked.toString("base64"),
        },
        bytes,
      );
    }
    if (!files.has(key))
      files.set(key, { entry: file, write: "blocks", blocks: written, reuse: right !== undefined });
  }
  for (const member of plans) member.byObject = splitByObject(member);
  return result;
}

/** The member's entries object by object, when its manifest counts each object's files. */
function splitByObject(member: MemberPlan): Map<string, EntryPlan>[] | undefined {
  const { objects, files } = member.manifest;
  if (objects.some((o) => o.files === undefined)) return undefined;
  if (objects.reduce((n, o) => n + (o.files ?? 0), 0) !== files.length) return undefined;
  const out: Map<string, EntryPlan>[] = [];
  let at = 0;
  for (const object of objects) {
    const own = new Map<string, EntryPlan>();
    const part = member.entries.get(object.part);
    for (const file of files.slice(at, at + (object.files ?? 0))) {
      if (file.part !== object.part) return undefined;
      const plan = part?.get(file.path);
      if (plan) own.set(file.path, plan);
    }
    at += object.files ?? 0;
    out.push(own);
  }
  return out;
}
