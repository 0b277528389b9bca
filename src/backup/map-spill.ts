/**
 * MapSpill: the big block maps of a backup being taken (its own, and for an incremental
 * its parent's), kept in a temporary file instead of the heap.
 *
 * Why: a map is about 3 MB of base64 per GiB of relation data, and a backup held every
 * map it made until its manifest was written, an incremental its parent's too. So the
 * heap grew by 3 to 6 MB per GiB: by arithmetic, an incremental of about 700 GB of
 * relation data passes Node.js's heap limit (about 4 GB on a host with 16 GB of memory or
 * more, 2 GB with 8 GB) and dies.
 * Spilled, a map is read back when it is needed: by the job that compares with the parent's
 * map, and when the manifest is written, one file at a time (jsonText's long strings).
 *
 * The file is made in the temporary directory (TMPDIR, else /tmp), private to this
 * process (mode 0600, unlinked at once: nothing is left behind, even by a kill -9), and
 * takes 3 MB per GiB of relation data (6 for an incremental). It leaves 2 GiB free there
 * (an incremental's spool shares the directory); when it cannot be made or written, or
 * would leave less, maps stay in memory as before, with a warning, and what a write that
 * failed part-way wrote is truncated away.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  ftruncateSync,
  openSync,
  readSync,
  statfsSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatBytes } from "../human-units.js";
import type { Logger } from "../log.js";
import { LONG_TEXT } from "../repository/json-object.js";

/** Maps with fewer base64 characters than this stay in memory (files under 24 MiB). */
export const SPILLED_FROM_CHARS = 1 << 16;

/**
 * Room a spill leaves free in its directory by default: an incremental's jobs spool the
 * changed blocks of a relation segment (up to 1 GiB each, spool.ts) in the same TMPDIR,
 * and the host's other programs write there too.
 */
export const SPILL_RESERVE_BYTES = 2 * 2 ** 30;

interface Place {
  at: number;
  length: number;
}

/** Closes a spill once none of the maps it gave out can be reached (MapSpill `untilUnreachable`). */
const unreachable = new FinalizationRegistry<MapSpill>((spill) => spill.released());

export class MapSpill {
  private fd: number | undefined;
  private end = 0;
  private failed = false;
  private closed = false;
  /** Maps given out and still reachable, when the spill closes itself (`untilUnreachable`). */
  private live = 0;

  /**
   * `untilUnreachable`: no caller closes it; it closes itself once no map it gave out can
   * be reached (a restore's plan, which commands hand around until they end).
   */
  constructor(
    private readonly log: Logger,
    private readonly dir = tmpdir(),
    private readonly untilUnreachable = false,
    /** Maps stay in memory rather than leave less than this free in `dir`. */
    private readonly reserveBytes = SPILL_RESERVE_BYTES,
  ) {}

  /**
   * The map itself when it is small (or the file failed), else a map whose `hashes` and
   * `from` are read from the file each time they are read (valid until `close`).
   */
  keep<M extends { hashes: string; from: string }>(map: M): M {
    if (map.hashes.length < SPILLED_FROM_CHARS || this.failed || this.closed) return map;
    const hashes = this.write(map.hashes);
    const from = hashes && this.write(map.from);
    if (!hashes || !from) return map;
    const read = (place: Place) => this.read(place);
    const spilled = { ...map } as M;
    Object.defineProperties(spilled, {
      hashes: { enumerable: true, get: () => read(hashes) },
      from: { enumerable: true, get: () => read(from) },
      // jsonText: holds long strings, which it serializes in slices (without reading
      // them just to find that out).
      [LONG_TEXT]: { enumerable: false, value: true },
    });
    if (this.untilUnreachable) {
      this.live++;
      unreachable.register(spilled, this);
    }
    return spilled;
  }

  /** One map given out can no longer be reached (the FinalizationRegistry's word). */
  released(): void {
    if (--this.live === 0) this.close();
  }

  /** Its file is closed; maps kept after this stay in memory. */
  close(): void {
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private write(text: string): Place | undefined {
    const bytes = Buffer.from(text, "latin1");
    try {
      const { bavail, bsize } = statfsSync(this.dir);
      if ((bavail - 1) * bsize - bytes.length < this.reserveBytes)
        throw new Error(
          `it would leave less than ${formatBytes(this.reserveBytes)} free, which the changed blocks of an incremental backup and other programs may need`,
        );
      if (this.fd === undefined) {
        const path = join(this.dir, `pgha-maps-${process.pid}-${randomBytes(6).toString("hex")}`);
        this.fd = openSync(path, "wx+", 0o600);
        unlinkSync(path);
      }
      let done = 0;
      while (done < bytes.length)
        done += writeSync(this.fd, bytes, done, bytes.length - done, this.end + done);
      const place = { at: this.end, length: bytes.length };
      this.end += bytes.length;
      return place;
    } catch (error) {
      this.failed = true;
      // What a write that failed part-way (ENOSPC) put there is given back at once.
      if (this.fd !== undefined) {
        try {
          ftruncateSync(this.fd, this.end);
        } catch {
          // The maps written before stay readable either way.
        }
      }
      this.log.warn(
        `block maps are not kept in a temporary file in ${this.dir} (${(error as Error).message}): they stay in memory, about 3 MB per GiB of relation data`,
      );
      // No map of it given out: nothing would ever close it.
      if (this.untilUnreachable && this.live === 0) this.close();
      return undefined;
    }
  }

  private read(place: Place): string {
    if (this.fd === undefined)
      throw new Error("a spilled block map was read after its spill closed");
    const bytes = Buffer.allocUnsafe(place.length);
    let done = 0;
    while (done < place.length) {
      const n = readSync(this.fd, bytes, done, place.length - done, place.at + done);
      if (n === 0) throw new Error("a spilled block map ended early");
      done += n;
    }
    return bytes.toString("latin1");
  }
}
