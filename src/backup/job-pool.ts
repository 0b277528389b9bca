/**
 * The pool of job worker threads that backups and restores run their bundles on: N jobs
 * read, hash, compress (or decompress, hash, write) at once, on N threads, while this
 * thread only moves stored bytes between them and the repository. zstd-napi is
 * synchronous, so this is how compression uses every core.
 *
 * Workers start on first use and are reused; close() keeps up to MAX_SPARES idle ones for
 * the next pool of this process (a restore drill fetches after it planned; tests run many
 * pools), unref'd so they never keep the process alive, and ends the rest. A task's stored bytes
 * flow with credit (job-protocol.ts), so memory per job is bounded whatever the bundle's
 * size. A task stops (ends with an AbortError) when its signal fires.
 */
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { HashResult, HashTask } from "./hash-files.js";
import {
  abortError,
  type FromWorker,
  INPUT_BUFFERS,
  INPUT_BYTES,
  receiveError,
  type ToWorker,
} from "./job-protocol.js";
import type { PackResult, PackTask } from "./pack-bundle.js";
import type { UnpackEvents, UnpackResult, UnpackTask } from "./unpack-bundle.js";

export interface PackJob {
  /** The stored bytes, for ObjectStore.put. Destroying it stops the task. */
  body: Readable;
  result: Promise<PackResult>;
}

export interface UnpackJob {
  /** Hands the worker stored bytes; resolves when more may be sent. */
  send(chunk: Uint8Array): Promise<void>;
  /** No more stored bytes. */
  end(): void;
  /** Settles once the worker ended the task (with its result or error). */
  result: Promise<UnpackResult>;
}

interface Task {
  onMessage(message: FromWorker): void;
  /** The worker died: the task fails with this error. */
  onCrash(error: Error): void;
}

class JobWorker {
  task: Task | undefined;
  /** Told when the worker dies: its pool forgets it (or the spares do). */
  onDead: ((worker: JobWorker) => void) | undefined;
  /** unpack input buffers back from the worker, reused by the next task. */
  readonly buffers: ArrayBuffer[] = [];
  /** How many input buffers exist (here, or in the worker). */
  buffersMade = 0;
  private readonly worker: Worker;

  constructor() {
    this.worker = startWorker();
    this.worker.on("message", (message: FromWorker) => this.task?.onMessage(message));
    const crash = (error: Error) => {
      const task = this.task;
      this.task = undefined;
      task?.onCrash(error);
      this.onDead?.(this);
    };
    this.worker.on("error", crash);
    this.worker.on("exit", (code) => crash(new Error(`a job worker exited with code ${code}`)));
  }

  /** A worker keeps the process alive while it runs a task, not while it waits for one. */
  busy(running: boolean): void {
    if (running) this.worker.ref();
    else this.worker.unref();
  }

  post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(message, transfer);
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}

/** The worker's module: compiled JavaScript, or TypeScript run through tsx (tests). */
function startWorker(): Worker {
  const entry = new URL(
    import.meta.url.endsWith(".ts") ? "./job-worker.ts" : "./job-worker.js",
    import.meta.url,
  );
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry, WORKER_OPTIONS);
  // Running from the sources (vitest, tsx): load the entry through tsx's loader.
  const tsx = createRequire(import.meta.url).resolve("tsx/package.json");
  const api = pathToFileURL(tsx.replace(/package\.json$/, "dist/esm/api/index.mjs")).href;
  const boot = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), WORKER_OPTIONS);
}

/**
 * A worker's young generation is capped: what it allocates is short-lived (per-file
 * results, stream chunks), and the default (V8 sizes it for throughput: tens of MB per
 * thread) made each job cost about 50 MB of RSS; with 100,000 files the jobs alone
 * pushed a backup past 256 MB.
 */
const WORKER_OPTIONS = { resourceLimits: { maxYoungGenerationSizeMb: 8 } };

/** Idle workers of closed pools, for the next pool (they never keep the process alive). */
const spares: JobWorker[] = [];
const MAX_SPARES = 8;

/** How many idle workers wait for the next pool (tests). */
export function spareWorkers(): number {
  return spares.length;
}

function keepSpare(worker: JobWorker): boolean {
  if (worker.task !== undefined || spares.length >= MAX_SPARES) return false;
  worker.busy(false);
  worker.onDead = (dead) => {
    const at = spares.indexOf(dead);
    if (at !== -1) spares.splice(at, 1);
  };
  spares.push(worker);
  return true;
}

export class JobPool {
  /** A task failed or was stopped: close() then ends every worker rather than keep one. */
  private failed = false;
  private readonly idle: JobWorker[] = [];
  private readonly all = new Set<JobWorker>();
  private readonly waiting: ((worker: JobWorker) => void)[] = [];

  constructor(readonly size: number) {}

  private async acquire(): Promise<JobWorker> {
    let worker = this.idle.pop();
    if (!worker && this.all.size < this.size) {
      worker = spares.pop() ?? new JobWorker();
      worker.onDead = (dead) => this.all.delete(dead);
      this.all.add(worker);
    }
    worker ??= await new Promise<JobWorker>((resolve) => this.waiting.push(resolve));
    worker.busy(true);
    return worker;
  }

  private release(worker: JobWorker): void {
    worker.task = undefined;
    worker.busy(false);
    if (!this.all.has(worker)) return;
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }

  /** Builds one bundle in a worker; its stored bytes come out of `body`. */
  pack(task: PackTask, progress: (bytes: number) => void, signal: AbortSignal): PackJob {
    let owed = 0;
    let worker: JobWorker | undefined;
    let ended = false;
    const body = new Readable({
      highWaterMark: 1 << 20,
      read() {
        if (owed > 0 && worker && !ended) worker.post({ t: "credit", bytes: owed });
        owed = 0;
      },
    });
    const result = new Promise<PackResult>((resolve, reject) => {
      const stop = () => worker?.post({ t: "abort" });
      const finish = (error: Error | undefined, value?: PackResult) => {
        ended = true;
        if (error) this.failed = true;
        signal.removeEventListener("abort", stop);
        if (worker) this.release(worker);
        if (error) {
          body.destroy(error);
          reject(error);
        } else {
          body.push(null);
          resolve(value as PackResult);
        }
      };
      void this.acquire().then((acquired) => {
        worker = acquired;
        if (signal.aborted) return finish(abortError());
        signal.addEventListener("abort", stop);
        // The consumer gave up (the store's put failed): stop the task.
        body.once("close", () => {
          if (!ended) stop();
        });
        acquired.task = {
          onMessage: (message) => {
            if (message.t === "output") {
              const chunk = Buffer.from(
                message.chunk.buffer,
                message.chunk.byteOffset,
                message.chunk.byteLength,
              );
              if (body.destroyed) return;
              if (body.push(chunk)) acquired.post({ t: "credit", bytes: chunk.length });
              else owed += chunk.length;
            } else if (message.t === "progress") progress(message.bytes);
            else if (message.t === "done") finish(undefined, message.result as PackResult);
            else if (message.t === "error") finish(receiveError(message.error));
          },
          onCrash: (error) => {
            worker = undefined;
            finish(error);
          },
        };
        acquired.post({ t: "pack", task });
      });
    });
    result.catch(() => undefined);
    return { body, result };
  }

  /** Hashes a batch of files in a worker (restore --delta's comparison). */
  hash(task: HashTask, signal: AbortSignal): Promise<HashResult> {
    return new Promise<HashResult>((resolve, reject) => {
      void this.acquire().then((worker) => {
        const stop = () => worker.post({ t: "abort" });
        let crashed = false;
        const finish = (error: Error | undefined, value?: HashResult) => {
          if (error) this.failed = true;
          signal.removeEventListener("abort", stop);
          if (!crashed) this.release(worker);
          if (error) reject(error);
          else resolve(value as HashResult);
        };
        if (signal.aborted) return finish(abortError());
        signal.addEventListener("abort", stop);
        worker.task = {
          onMessage: (message) => {
            if (message.t === "done") finish(undefined, message.result as HashResult);
            else if (message.t === "error") finish(receiveError(message.error));
          },
          onCrash: (error) => {
            crashed = true;
            finish(error);
          },
        };
        worker.post({ t: "hash", task });
      });
    });
  }

  /** Extracts one object in a worker, from the stored bytes given to `send`. */
  unpack(task: UnpackTask, events: UnpackEvents, signal: AbortSignal): UnpackJob {
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let ended = false;
    let stopped = false;
    let worker: JobWorker | undefined;
    /** The buffer being filled, and how far. */
    let filling: Uint8Array | undefined;
    let fill = 0;
    const acquired = this.acquire();
    const result = new Promise<UnpackResult>((resolve, reject) => {
      const stop = () => {
        if (stopped || ended) return;
        stopped = true;
        worker?.post({ t: "abort" });
      };
      const finish = (error: Error | undefined, value?: UnpackResult) => {
        ended = true;
        if (error || failure) this.failed = true;
        signal.removeEventListener("abort", stop);
        if (worker) {
          // Buffers a failed task did not hand back are gone; the next task makes new ones.
          worker.buffersMade = worker.buffers.length;
          this.release(worker);
        }
        wake?.();
        if (error) reject(failure ?? error);
        else if (failure) reject(failure);
        else resolve(value as UnpackResult);
      };
      /** An event the caller refused (a file not in the manifest): the task fails with it. */
      const check = (call: () => void) => {
        try {
          call();
        } catch (error) {
          failure ??= error as Error;
          stop();
        }
      };
      void acquired.then((got) => {
        worker = got;
        if (signal.aborted) return finish(abortError());
        signal.addEventListener("abort", stop);
        got.task = {
          onMessage: (message) => {
            switch (message.t) {
              case "used":
                got.buffers.push(message.buffer);
                wake?.();
                break;
              case "progress":
                events.progress(message.bytes);
                break;
              case "files":
                check(() => {
                  for (const [path, size, sha256] of message.files) events.file(path, size, sha256);
                });
                break;
              case "blocks":
                check(() => {
                  for (const [path, count] of message.files) events.blocks?.(path, count);
                });
                break;
              case "directory":
                check(() => events.directory(message.path, message.mode));
                break;
              case "symlink":
                check(() => events.symlink(message.path, message.target));
                break;
              case "done":
                finish(undefined, message.result as UnpackResult);
                break;
              case "error":
                finish(receiveError(message.error));
                break;
            }
          },
          onCrash: (error) => {
            worker = undefined;
            finish(error);
          },
        };
        got.post({ t: "unpack", task });
      });
    });
    result.catch(() => undefined);
    const gone = () => ended || stopped;
    /** Hands the filled part of the current buffer to the worker. */
    const hand = (got: JobWorker) => {
      if (!filling || fill === 0) return;
      const chunk = filling.subarray(0, fill);
      filling = undefined;
      fill = 0;
      got.post({ t: "input", chunk }, [chunk.buffer as ArrayBuffer]);
    };
    return {
      result,
      send: async (chunk) => {
        const got = await acquired;
        let rest = chunk;
        while (rest.length > 0) {
          if (gone()) throw failure ?? abortError();
          if (!filling) {
            const reused = got.buffers.pop();
            if (reused) filling = new Uint8Array(reused);
            else if (got.buffersMade < INPUT_BUFFERS) {
              got.buffersMade++;
              filling = new Uint8Array(INPUT_BYTES);
            } else {
              // Every buffer is with the worker: wait for one to come back.
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              wake = undefined;
              continue;
            }
          }
          const take = Math.min(rest.length, filling.length - fill);
          filling.set(rest.subarray(0, take), fill);
          fill += take;
          rest = rest.subarray(take);
          if (fill === filling.length) hand(got);
        }
      },
      end: () => {
        void acquired.then((got) => {
          if (gone()) return;
          hand(got);
          got.post({ t: "end" });
        });
      },
    };
  }

  /** Leaves idle workers to the next pool (up to MAX_SPARES, none after a failure) and ends the others. */
  async close(): Promise<void> {
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    const kept = this.failed ? [] : workers.filter(keepSpare);
    await Promise.all(workers.filter((w) => !kept.includes(w)).map((w) => w.terminate()));
  }
}

/**
 * Runs `work` on every item, `limit` at a time, in the items' order. After the first
 * failure no item starts, the running ones are stopped through the signal, and once every
 * one has settled (nothing is left in flight) the first error is thrown. `work` may call
 * `failing()` to stop the others at once when it knows it will fail but must still wait
 * for something of its own to settle.
 */
export async function runEach<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, signal: AbortSignal, failing: () => void) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  const failing = () => controller.abort();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && !controller.signal.aborted && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, controller.signal, failing);
      } catch (error) {
        // A job stopped because another failed does not explain the failure.
        const first = failure as { error: unknown } | undefined;
        if (!first || (isAbort(first.error) && !isAbort(error))) failure = { error };
        controller.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure) throw failure.error;
}

/** Whether an error is a task's stop (after another one failed), not a failure of its own. */
export function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}
