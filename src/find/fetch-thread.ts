/**
 * Fetching segments on a worker thread: checking, decompressing and writing a 16 MiB
 * segment is tens of milliseconds of CPU (zstd-napi is synchronous), which on the main
 * thread would hold up reading pg_waldump's output. One thread, one segment at a time,
 * in the order asked.
 */
import { Worker } from "node:worker_threads";
import type { Config } from "../config/load.js";
import { fromWire, type WireError } from "../wal/prepare-pool.js";

type Reply = { id: number; error?: WireError };

export class FetchThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor(config: Config) {
    this.worker = new Worker(new URL("./fetch-worker.js", import.meta.url), {
      workerData: { config },
    });
    this.worker.on("message", (reply: Reply) => {
      const job = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error) job?.reject(fromWire(reply.error));
      else job?.resolve();
    });
    this.worker.on("error", (error) => this.failAll(error));
    this.worker.on("exit", (code) => this.failAll(new Error(`the fetch thread exited (${code})`)));
  }

  /** Fetches one WAL file into dest (wal/fetch.ts, not fsynced). */
  fetch(name: string, dest: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, name, dest });
    });
  }

  private failAll(error: Error): void {
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
