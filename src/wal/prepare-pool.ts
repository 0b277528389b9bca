/**
 * prepareWalFile on worker threads: reading, hashing and compressing a 16 MiB segment is
 * about 50 ms of CPU, and zstd-napi is synchronous, so the asynchronous archiver spreads it
 * over the cores while its main thread keeps the uploads moving.
 */
import { Worker } from "node:worker_threads";
import type { Compression } from "../compress/compression.js";
import { type ExitCodeName, PghaError } from "../errors.js";
import type { PreparedWal } from "./push.js";

/** An error as it crosses the thread boundary. */
export interface WireError {
  exit: ExitCodeName | undefined;
  message: string;
  hint: string | undefined;
}

export function toWire(error: unknown): WireError {
  if (error instanceof PghaError)
    return { exit: error.exit, message: error.message, hint: error.hint };
  return {
    exit: undefined,
    message: error instanceof Error ? error.message : String(error),
    hint: undefined,
  };
}

export function fromWire(wire: WireError): Error {
  return wire.exit === undefined
    ? new Error(wire.message)
    : new PghaError(
        wire.exit,
        wire.message,
        wire.hint === undefined ? undefined : { hint: wire.hint },
      );
}

type Reply = { id: number; prepared: PreparedWal } | { id: number; error: WireError };

export class PreparePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: {
    path: string;
    resolve: (p: PreparedWal) => void;
    reject: (e: Error) => void;
  }[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (p: PreparedWal) => void; reject: (e: Error) => void; worker: Worker }
  >();
  private next = 0;

  constructor(size: number, compression: Compression) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./prepare-worker.js", import.meta.url), {
        workerData: { compression },
      });
      worker.on("message", (reply: Reply) => this.settle(worker, reply));
      worker.on("error", (error) => this.fail(worker, error));
      worker.unref();
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  prepare(path: string): Promise<PreparedWal> {
    return new Promise((resolve, reject) => {
      this.queue.push({ path, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const job = this.queue.shift() as (typeof this.queue)[number];
      const id = this.next++;
      this.pending.set(id, { resolve: job.resolve, reject: job.reject, worker });
      worker.ref();
      worker.postMessage({ id, path: job.path });
    }
  }

  private settle(worker: Worker, reply: Reply): void {
    const job = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    worker.unref();
    this.idle.push(worker);
    if (job) {
      if ("error" in reply) job.reject(fromWire(reply.error));
      else {
        const body = reply.prepared.body;
        // Structured cloning turns a Buffer into a Uint8Array.
        job.resolve({
          ...reply.prepared,
          body:
            body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.length),
        });
      }
    }
    this.dispatch();
  }

  /** A worker that died takes its job with it; the pool goes on with the others. */
  private fail(worker: Worker, error: Error): void {
    for (const [id, job] of this.pending) {
      if (job.worker !== worker) continue;
      this.pending.delete(id);
      job.reject(error);
    }
    const at = this.workers.indexOf(worker);
    if (at !== -1) this.workers.splice(at, 1);
    if (this.workers.length === 0) {
      for (const job of this.queue.splice(0)) job.reject(error);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
