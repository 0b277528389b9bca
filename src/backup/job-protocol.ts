/**
 * The messages between a backup/restore job worker (job-worker.ts) and the pool that runs
 * it (job-pool.ts). A worker runs one task at a time. Byte streams in either direction are
 * bounded: a pack task stops once WINDOW_BYTES of output are sent and not yet taken (the
 * pool gives credit back as it takes them); an unpack task gets its input in at most
 * INPUT_BUFFERS buffers of INPUT_BYTES that it hands back once used, to be filled again,
 * so neither thread allocates per chunk. Errors cross as plain data and are rebuilt as
 * the same error classes on the other side.
 */
import {
  IntegrityError,
  LocalIoError,
  PghaError,
  RefusedError,
  StorageError,
  UsageError,
} from "../errors.js";
import type { HashResult, HashTask } from "./hash-files.js";
import type { PackResult, PackTask } from "./pack-bundle.js";
import type { UnpackResult, UnpackTask } from "./unpack-bundle.js";

/** pack: output bytes in flight per job. */
export const WINDOW_BYTES = 4 << 20;

/** unpack: the input buffers that circulate between the pool and a job. */
export const INPUT_BUFFERS = 4;
export const INPUT_BYTES = 1 << 20;

export type ToWorker =
  | { t: "pack"; task: PackTask }
  | { t: "unpack"; task: UnpackTask }
  /** restore --delta: hash a batch of the target's files (hash-files.ts). */
  | { t: "hash"; task: HashTask }
  /** pack: the pool took this many output bytes. */
  | { t: "credit"; bytes: number }
  /** unpack: stored bytes (a view of one of the circulating buffers), and their end. */
  | { t: "input"; chunk: Uint8Array }
  | { t: "end" }
  /** Stop the task: it ends with an AbortError. */
  | { t: "abort" };

export type FromWorker =
  | { t: "output"; chunk: Uint8Array }
  /** unpack: an input buffer handed back, used. */
  | { t: "used"; buffer: ArrayBuffer }
  | { t: "progress"; bytes: number }
  /** Files written, in batches: [path, size, sha256] each. */
  | { t: "files"; files: [string, number, string][] }
  /** unpack: planned entries whose blocks were written (assembly-plan.ts), in batches. */
  | { t: "blocks"; files: [string, number][] }
  | { t: "directory"; path: string; mode: number }
  | { t: "symlink"; path: string; target: string }
  | { t: "done"; result: PackResult | UnpackResult | HashResult }
  | { t: "error"; error: SentError };

export interface SentError {
  name: string;
  message: string;
  exit?: PghaError["exit"];
  hint?: string;
  code?: string;
  stack?: string;
}

/** The error a stopped task ends with. */
export function abortError(): Error {
  const error = new Error("stopped: another job failed");
  error.name = "AbortError";
  return error;
}

export function sendError(error: unknown): SentError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const sent: SentError = { name: error.name, message: error.message };
  if (error instanceof PghaError) {
    sent.exit = error.exit;
    if (error.hint !== undefined) sent.hint = error.hint;
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string") sent.code = code;
  if (error.stack !== undefined) sent.stack = error.stack;
  return sent;
}

export function receiveError(sent: SentError): Error {
  const hint = sent.hint;
  let error: Error;
  switch (sent.name) {
    case "LocalIoError":
      error = new LocalIoError(sent.message, hint === undefined ? undefined : { hint });
      break;
    case "IntegrityError":
      error = new IntegrityError(sent.message, hint);
      break;
    case "RefusedError":
      error = new RefusedError(sent.message, hint);
      break;
    case "UsageError":
      error = new UsageError(sent.message, hint);
      break;
    case "StorageError":
      error = new StorageError(sent.message, { transient: false, ...(hint ? { hint } : {}) });
      break;
    default:
      error =
        sent.exit === undefined
          ? new Error(sent.message)
          : new PghaError(sent.exit, sent.message, hint === undefined ? undefined : { hint });
      error.name = sent.name;
  }
  if (sent.code !== undefined) (error as NodeJS.ErrnoException).code = sent.code;
  if (sent.stack !== undefined) error.stack = sent.stack;
  return error;
}
