/**
 * Streams between PostgreSQL client programs and the repository without temporary files:
 * a program's stdout into an object (dump), or an object into a program's stdin (restore).
 * A program that exits non-zero or is killed fails the operation with its own message.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { pipeline, Readable, Transform } from "node:stream";
import { compressStream, decompressStream } from "../compress/codec.js";
import type { Compression } from "../compress/compression.js";
import {
  IntegrityError,
  NotFoundError,
  PghaError,
  PostgresError,
  StorageError,
} from "../errors.js";
import type { DumpObject } from "../repository/dump-manifest.js";
import type { ObjectStore } from "../storage/object-store.js";
import { damagedWhileRead, resumingGet } from "../storage/retrying-store.js";

const STDERR_LIMIT = 64 * 1024;

export interface ProgramRun {
  program: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** How the failure message names what ran, e.g. 'pg_dump of database "shop"'. */
  what: string;
}

function counted(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      done(null, chunk);
    },
  });
}

function failure(
  run: ProgramRun,
  code: number | null,
  signal: string | null,
  stderr: string,
  cause?: unknown,
): PostgresError {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "");
  const message =
    lines.slice(-3).join(" / ") || (cause instanceof Error ? cause.message : "no message");
  const how = signal
    ? `was killed by ${signal}`
    : code === null
      ? "could not run"
      : `exited with ${code}`;
  return new PostgresError(`${run.what} ${how}: ${message}`, { cause });
}

/** Runs a program and stores its stdout under key. Resolves only if the program succeeded. */
export async function programToStore(
  run: ProgramRun,
  store: ObjectStore,
  key: string,
  compression: Compression,
): Promise<DumpObject> {
  // Ready before the program starts: Node discards a child's unread stdout when it exits,
  // so nothing may be awaited between spawn and piping its stdout.
  const compress = await compressStream(compression);
  const child = spawn(run.program, run.args, { env: run.env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_LIMIT) stderr += d.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, signal) => resolve({ code, signal }));
    },
  );
  const rawHash = createHash("sha256");
  let rawSize = 0;
  let storedSize = 0;
  const body = pipeline(
    child.stdout,
    counted((chunk) => {
      rawHash.update(chunk);
      rawSize += chunk.length;
    }),
    compress,
    counted((chunk) => {
      storedSize += chunk.length;
    }),
    () => undefined,
  );
  const stored = store
    .put(key, body, { metadata: { "pgha-format": "1", "pgha-compression": compression.algorithm } })
    .then(
      () => undefined,
      (error: Error) => {
        // The store gave up (possibly before reading anything): stop the program, or it
        // would block on a full pipe forever.
        body.destroy(error);
        child.kill();
        return error;
      },
    );
  const [status, putError] = await Promise.all([exited, stored]);
  // When pgha stopped reading first, the program's failure (EPIPE) is only a consequence.
  if (putError) throw putError;
  if (status.error || status.code !== 0)
    throw failure(run, status.code, status.signal, stderr, status.error);
  return {
    key,
    compression: compression.algorithm,
    rawSize,
    sha256: rawHash.digest("hex"),
    storedSize,
  };
}

/** Reads an object, decompressed, counting and hashing the raw bytes; fails on a mismatch at the end. */
export async function objectStream(
  store: ObjectStore,
  object: DumpObject,
): Promise<{ stream: Readable; verified: Promise<void> }> {
  const { chunks } = await resumingGet(store, object.key).catch((error: unknown) => {
    // The manifest lists it: a missing object is a damaged dump set, not "not found".
    if (error instanceof NotFoundError)
      throw new IntegrityError(
        `${store.url}/${object.key} is missing, though its manifest lists it`,
      );
    throw error;
  });
  const body = Readable.from(chunks, { objectMode: false });
  const hash = createHash("sha256");
  let size = 0;
  let origin: "body" | "decompress" | "consumer" | undefined;
  body.once("error", () => {
    origin ??= "body";
  });
  const decompress = await decompressStream(object.compression);
  decompress.once("error", () => {
    origin ??= "decompress";
  });
  let settle: (error?: Error) => void = () => undefined;
  const verified = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  verified.catch(() => undefined);
  const tail = counted((chunk) => {
    hash.update(chunk);
    size += chunk.length;
  });
  // The reader (a program that stopped, EPIPE) fails the tail first, then pipeline()
  // spreads it upstream: that is not a problem of the object.
  tail.once("error", () => {
    origin ??= "consumer";
  });
  const stream = pipeline(body, decompress, tail, (error) => {
    if (error) {
      const damaged = damagedWhileRead(
        `${store.url}/${object.key}`,
        error,
        "'pgha verify' lists what is damaged in the repository; restore another dump set (pgha dump list)",
      );
      if (damaged) settle(damaged);
      else if (error instanceof PghaError) settle(error);
      else if (origin === "consumer")
        settle(
          new StorageError(`the reader stopped: ${error.message}`, {
            transient: false,
            cause: error,
          }),
        );
      else if (origin === "decompress")
        settle(
          new IntegrityError(
            `${store.url}/${object.key} is corrupt: cannot decompress (${error.message})`,
          ),
        );
      else
        settle(
          new StorageError(`reading ${store.url}/${object.key} failed: ${error.message}`, {
            transient: true,
            cause: error,
          }),
        );
      return;
    }
    if (size !== object.rawSize || hash.digest("hex") !== object.sha256) {
      settle(
        new IntegrityError(
          `${store.url}/${object.key} is corrupt: its checksum does not match the manifest`,
        ),
      );
    } else settle();
  });
  return { stream, verified };
}

/** Feeds a verified object stream into a program's stdin; resolves with its stderr on success. */
export async function storeToProgram(
  run: ProgramRun,
  store: ObjectStore,
  object: DumpObject,
): Promise<string> {
  const { stream, verified } = await objectStream(store, object);
  const child = spawn(run.program, run.args, { env: run.env, stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_LIMIT) stderr += d.toString("utf8");
  });
  // pipeline() closes the program's stdin also when the object stream fails, so the
  // program sees the input end instead of waiting for more; the program may also stop
  // reading early (its own error), which is not a failure of ours.
  pipeline(stream, child.stdin, () => undefined);
  const status = await new Promise<{ code: number | null; signal: string | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, signal) => resolve({ code, signal }));
    },
  );
  stream.destroy();
  const problem = await verified.then(
    () => undefined,
    (error: Error) => error,
  );
  const failed = status.error !== undefined || status.code !== 0;
  // A corrupt object, or a download that failed past its retries, is the cause even when
  // the program failed on the damaged or short input (pg_restore: "end of file"); a
  // stream cut short because the program stopped reading (not transient) is not.
  if (problem instanceof IntegrityError) throw problem;
  if (problem instanceof StorageError && problem.transient) throw problem;
  if (failed) throw failure(run, status.code, status.signal, stderr, status.error);
  if (problem) throw problem;
  return stderr;
}
