/**
 * planAssembly: pure. Which backup of a chain each file, and each block of a block-mapped
 * file, is written from when backup B is restored from [...chain, B] (FORMAT.md,
 * "Incremental backups"). B's manifest alone decides: a block comes from the backup its
 * block map's `from` names, a whole file from B or from the backup its `from` names. What
 * no backup is named for (a superseded block, a file B no longer has) is read past, never
 * written. Files of a restore --delta that are already right (`keep`), and blocks of a
 * file that are already right (`reuse`), are not written either.
 *
 * In two steps, so that a chain's manifests need not be held at once (with 100,000 files
 * each is 30 MB in memory): planTarget walks B's files; then planMember, once per member,
 * walks that member's files (the caller reads its manifest, plans it, and drops its files).
 *
 * A manifest that contradicts itself or its chain (a block from a backup that does not
 * hold the file, a hash list of the wrong length) fails the plan: nothing is downloaded.
 */
import { IntegrityError } from "../errors.js";
import type { BackupManifest } from "../repository/backup-manifest.js";
import { type BlockLookup, MAX_CHAIN_BACKUPS } from "./block-map.js";
import { BLOCK_HASH_BYTES, blockCount, type ChainFileEntry, chainIds } from "./chain-manifest.js";

/** What a job does with one tar entry of a member's object. */
export type EntryPlan =
  /** The entry is the complete file: write it as it comes (its sha256 is checked). */
  | { how: "whole"; mode: number }
  /**
   * Write these blocks (ascending) of the entry at their offsets, each checked against its
   * hash (16 bytes per listed block); `delta`: the entry is a delta entry, else
   * the member's complete file. `size`: the restored file's size (its last block may be short).
   */
  | {
      how: "blocks";
      mode: number;
      delta: boolean;
      blockSize: number;
      size: number;
      /** Typed arrays, not a number[] and base64: a chain restore plans every block of a 1 GiB file. */
      blocks: Uint32Array;
      hashes: Uint8Array;
    };

/**
 * One object for every file of a mode streamed whole (100,000 of them cost nothing apart).
 * `mode`, in every plan: the restored file's (B's manifest's), for a job that makes it.
 */
const WHOLE = new Map<number, EntryPlan>();
function whole(mode: number): EntryPlan {
  let plan = WHOLE.get(mode);
  if (!plan) {
    plan = Object.freeze({ how: "whole", mode });
    WHOLE.set(mode, plan);
  }
  return plan;
}

export interface MemberPlan {
  /** The member's manifest (set by planMember); a member before B without its files. */
  manifest: BackupManifest;
  /**
   * By object (index in manifest.objects): its planned entries by tar path; an object
   * whose map is empty is not read. Where the manifest does not say which files each
   * object holds, every object of a part shares the part's map.
   */
  byObject: Map<string, EntryPlan>[];
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
   * blocks: assembled block by block, each written at its offset.
   */
  write: "keep" | "whole" | "blocks";
  /** blocks: how many blocks are written (the others are already right: `reuse`). */
  blocks: number;
  /** blocks: the existing file's content is reused (it is cut to size, not emptied). */
  reuse: boolean;
  /** While restoring: whole copies written (must end at 1), or blocks written (at `blocks`). */
  done: number;
}

export interface Assembly {
  /** One a member, oldest first; planned by planMember. */
  members: MemberPlan[];
  /** Every file of B, in its manifest's order. */
  files: FileWrite[];
  kept: number;
  keptBytes: number;
  written: number;
  writtenBytes: number;
  /** B's file at `path` of `part` (the entries' own strings: no key string per file). */
  find(part: string, path: string): FileWrite | undefined;
}

/** An Assembly with planMember's input. */
export interface TargetPlan extends Assembly {
  /** The members' ids, oldest first ([...chain, B]). */
  ids: readonly string[];
  /** B's files that are written (their maps are decoded again per member: no copy is kept). */
  targets: FileWrite[];
  reuse: ReadonlyMap<string, BlockLookup>;
}

/**
 * Step 1: B's files. The members are [...B's chain, B], oldest first; their manifests come
 * with planMember. `reuse`: for a file being rewritten in place, the blocks the target
 * already has right.
 */
export function planTarget(
  target: BackupManifest,
  keep: ReadonlySet<string> = new Set(),
  reuse: ReadonlyMap<string, BlockLookup> = new Map(),
): TargetPlan {
  const ids = [...chainIds(target), target.id];
  if (ids.length > MAX_CHAIN_BACKUPS)
    throw new IntegrityError(`backup ${target.id} has a chain of ${ids.length} backups`);
  const byPart = new Map<string, Map<string, FileWrite>>();
  const plan: TargetPlan = {
    members: ids.map((_, at) => ({
      manifest: target,
      byObject: [],
      structure: at === ids.length - 1,
      bytes: 0,
    })),
    files: [],
    kept: 0,
    keptBytes: 0,
    written: 0,
    writtenBytes: 0,
    find: (part, path) => byPart.get(part)?.get(path),
    ids,
    targets: [],
    reuse,
  };
  const bad = (file: ChainFileEntry, why: string) =>
    new IntegrityError(`backup ${target.id}: ${file.part}/${file.path}: ${why}`);
  for (const file of target.files) {
    const key = `${file.part}/${file.path}`;
    const write: FileWrite = { entry: file, write: "keep", blocks: 0, reuse: false, done: 0 };
    plan.files.push(write);
    const part = byPart.get(file.part) ?? new Map<string, FileWrite>();
    byPart.set(file.part, part);
    part.set(file.path, write);
    if (keep.has(key)) {
      plan.kept++;
      plan.keptBytes += file.size;
      continue;
    }
    plan.written++;
    if (!file.blocks) {
      const source = file.stored === "none" ? file.from : target.id;
      if (source === undefined || !ids.includes(source))
        throw bad(
          file,
          `it is held by backup ${source ?? "(none named)"}, which is not in its chain`,
        );
      write.write = "whole";
      plan.writtenBytes += file.size;
      plan.targets.push(write);
      continue;
    }
    const { size: blockSize } = file.blocks;
    const count = blockCount(file.size, blockSize);
    const from = Buffer.from(file.blocks.from, "base64");
    if (
      !(blockSize > 0) ||
      Buffer.from(file.blocks.hashes, "base64").length !== count * BLOCK_HASH_BYTES ||
      from.length !== count
    )
      throw bad(file, "its block map does not match its size");
    const right = reuse.get(key);
    let written = 0;
    for (let block = 0; block < count; block++) {
      if (right?.has(block)) continue;
      if ((from[block] as number) >= ids.length)
        throw bad(
          file,
          `block ${block} is from backup #${from[block]}, past its chain of ${ids.length}`,
        );
      written++;
      plan.writtenBytes += Math.min(blockSize, file.size - block * blockSize);
    }
    write.write = "blocks";
    write.blocks = written;
    write.reuse = right !== undefined;
    plan.targets.push(write);
  }
  return plan;
}

/**
 * Step 2: what member `at` gives, from its own manifest: take() each of its files, in its
 * manifest's order (which says which object holds each file), then finish() with the
 * manifest (without its files: they may be read past, never held at once). Every file B
 * takes from the member must be there, holding its data. The member keeps its manifest
 * without its files (B keeps its own).
 */
export class MemberPlanner {
  private readonly member: MemberPlan;
  private readonly id: string;
  private readonly target: BackupManifest;
  /** What B wants of this member, by part and path. */
  private readonly wanted = new Map<
    string,
    Map<string, { t: FileWrite; blocks: Uint32Array | undefined }>
  >();
  /** Each file's part (an index into `parts`), in order: checked against the objects. */
  private readonly partOf: number[] = [];
  private readonly parts: string[] = [];
  /** The files B takes from the member: their place in its list, path and plan. */
  private readonly taken: { ordinal: number; part: string; path: string; plan: EntryPlan }[] = [];
  /** take() runs while the manifest is read: its first error waits for finish(). */
  private failure: Error | undefined;

  constructor(
    private readonly plan: TargetPlan,
    private readonly at: number,
  ) {
    this.member = plan.members[at] as MemberPlan;
    this.id = plan.ids[at] as string;
    this.target = plan.members.at(-1)?.manifest as BackupManifest;
    for (const t of plan.targets) {
      const { entry } = t;
      if (!entry.blocks) {
        if ((entry.stored === "none" ? entry.from : this.target.id) === this.id)
          this.want(t, undefined);
        continue;
      }
      const from = Buffer.from(entry.blocks.from, "base64");
      const right = t.reuse ? plan.reuse.get(`${entry.part}/${entry.path}`) : undefined;
      let count = 0;
      for (let b = from.indexOf(at); b !== -1; b = from.indexOf(at, b + 1))
        if (!right?.has(b)) count++;
      if (count === 0) continue;
      const blocks = new Uint32Array(count);
      let next = 0;
      for (let b = from.indexOf(at); b !== -1; b = from.indexOf(at, b + 1))
        if (!right?.has(b)) blocks[next++] = b;
      this.want(t, blocks);
    }
  }

  private want(t: FileWrite, blocks: Uint32Array | undefined): void {
    const part = this.wanted.get(t.entry.part) ?? new Map();
    this.wanted.set(t.entry.part, part);
    part.set(t.entry.path, { t, blocks });
  }

  private bad(file: ChainFileEntry, why: string): IntegrityError {
    return new IntegrityError(`backup ${this.target.id}: ${file.part}/${file.path}: ${why}`);
  }

  /** The member's next file. */
  take(own: ChainFileEntry): void {
    const ordinal = this.partOf.length;
    let part = this.parts.indexOf(own.part);
    if (part === -1) part = this.parts.push(own.part) - 1;
    this.partOf.push(part);
    if (this.failure) return;
    try {
      const plan = this.planOf(own);
      if (plan) this.taken.push({ ordinal, part: own.part, path: own.path, plan });
    } catch (error) {
      this.failure = error as Error;
    }
  }

  private planOf(own: ChainFileEntry): EntryPlan | undefined {
    const found = this.wanted.get(own.part)?.get(own.path);
    if (!found) return undefined;
    this.wanted.get(own.part)?.delete(own.path);
    const { t, blocks } = found;
    const file = t.entry;
    if (own.stored === "none")
      throw this.bad(
        file,
        `its manifest names backup ${this.id}, which does not hold the file's data`,
      );
    const sameWhole =
      (own.stored ?? "whole") === "whole" && own.size === file.size && own.sha256 === file.sha256;
    if (!blocks) {
      if (!sameWhole) throw this.bad(file, `backup ${this.id} does not hold the same file whole`);
      this.member.bytes += file.size;
      return whole(file.mode);
    }
    const { size: blockSize } = file.blocks as { size: number };
    const bytes = blocks.reduce((n, b) => n + Math.min(blockSize, file.size - b * blockSize), 0);
    this.member.bytes += bytes;
    // Every block from this member, none reused, and its copy is the file itself: stream it
    // whole (one check: its sha256).
    if (sameWhole && !t.reuse && blocks.length === t.blocks) {
      t.write = "whole";
      t.blocks = 0;
      return whole(file.mode);
    }
    const hashes = Buffer.from((file.blocks as { hashes: string }).hashes, "base64");
    const picked = new Uint8Array(blocks.length * BLOCK_HASH_BYTES);
    blocks.forEach((b, i) => {
      hashes.copy(picked, i * BLOCK_HASH_BYTES, b * BLOCK_HASH_BYTES, (b + 1) * BLOCK_HASH_BYTES);
    });
    return {
      how: "blocks",
      mode: file.mode,
      delta: own.stored === "blocks",
      blockSize,
      size: file.size,
      blocks,
      hashes: picked,
    };
  }

  /** After the last file: `manifest` is the member's (its files are not looked at). */
  finish(manifest: BackupManifest): void {
    if (manifest.id !== this.id) throw new Error(`${manifest.id} is not member ${this.at}`);
    if (this.failure) throw this.failure;
    for (const part of this.wanted.values())
      for (const { t } of part.values())
        throw this.bad(
          t.entry,
          `its manifest names backup ${this.id}, which does not have the file`,
        );
    const member = this.member;
    member.manifest = this.at === this.plan.ids.length - 1 ? manifest : { ...manifest, files: [] };
    const { objects } = manifest;
    // Each object's entries, where the manifest counts each object's files and lists them
    // object by object; else every object of a part is given the part's.
    const objectOf = this.objectOfOrdinal(manifest);
    const ofPart = new Map<string, Map<string, EntryPlan>>();
    member.byObject = objects.map((o) => {
      if (objectOf) return new Map<string, EntryPlan>();
      const shared = ofPart.get(o.part) ?? new Map<string, EntryPlan>();
      ofPart.set(o.part, shared);
      return shared;
    });
    for (const { ordinal, part, path, plan } of this.taken) {
      const into = objectOf ? member.byObject[objectOf[ordinal] as number] : ofPart.get(part);
      if (!into) throw new IntegrityError(`backup ${this.id} has no object for part ${part}`);
      into.set(path, plan);
    }
  }

  /** The object of each file, by its place in the list; undefined where not known. */
  private objectOfOrdinal(manifest: BackupManifest): Uint32Array | undefined {
    const { objects } = manifest;
    if (objects.some((o) => o.files === undefined)) return undefined;
    if (objects.reduce((n, o) => n + (o.files ?? 0), 0) !== this.partOf.length) return undefined;
    const out = new Uint32Array(this.partOf.length);
    let ordinal = 0;
    for (const [index, object] of objects.entries())
      for (let n = 0; n < (object.files ?? 0); n++, ordinal++) {
        if (this.parts[this.partOf[ordinal] as number] !== object.part) return undefined;
        out[ordinal] = index;
      }
    return out;
  }
}

/** Step 2 over a whole manifest: MemberPlanner's take() of each of its files, then finish(). */
export function planMember(plan: TargetPlan, at: number, manifest: BackupManifest): void {
  const planner = new MemberPlanner(plan, at);
  for (const file of manifest.files) planner.take(file);
  planner.finish(manifest);
}

/**
 * Both steps over whole manifests, `members` = [...chain, B] oldest first (tests, and
 * callers that hold every manifest anyway).
 */
export function planAssembly(
  members: readonly BackupManifest[],
  keep?: ReadonlySet<string>,
  reuse?: ReadonlyMap<string, BlockLookup>,
): Assembly {
  const target = members.at(-1);
  if (!target) throw new Error("planAssembly needs at least the target backup");
  const plan = planTarget(target, keep, reuse);
  if (members.length !== plan.ids.length) throw new Error("planAssembly: not the whole chain");
  members.forEach((m, at) => {
    planMember(plan, at, m);
  });
  plan.targets = [];
  return plan;
}
