/**
 * The entry of a backup/restore job worker thread (started by job-pool.ts): runs one pack
 * or unpack task at a time, with the byte streams and credit of job-protocol.ts.
 */
import { parentPort } from "node:worker_threads";
import { hashFiles } from "./hash-files.js";
import {
  abortError,
  type FromWorker,
  sendError,
  type ToWorker,
  WINDOW_BYTES,
} from "./job-protocol.js";
import { packBundle } from "./pack-bundle.js";
import { unpackBundle } from "./unpack-bundle.js";

/** The running task's end of the channel. */
class TaskChannel {
  aborted = false;
  private outstanding = 0;
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();
  private readonly input: Uint8Array[] = [];
  private inputEnded = false;

  constructor(private readonly post: (message: FromWorker, transfer?: ArrayBuffer[]) => void) {}

  private wake(): void {
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
  }

  private wait(): Promise<void> {
    if (this.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => this.waiters.add({ resolve, reject }));
  }

  abort(): void {
    this.aborted = true;
    for (const waiter of this.waiters) waiter.reject(abortError());
    this.waiters.clear();
  }

  /** pack: sends one output buffer (transferred), then waits while the window is full. */
  async output(chunk: Buffer): Promise<void> {
    if (this.aborted) throw abortError();
    this.outstanding += chunk.length;
    const view = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    this.post({ t: "output", chunk: view }, [chunk.buffer as ArrayBuffer]);
    while (this.outstanding >= WINDOW_BYTES) await this.wait();
  }

  credit(bytes: number): void {
    this.outstanding -= bytes;
    this.wake();
  }

  push(chunk: Uint8Array): void {
    this.input.push(chunk);
    this.wake();
  }

  end(): void {
    this.inputEnded = true;
    this.wake();
  }

  /** unpack: the input; each buffer goes back to the pool once the consumer is done with it. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.input.shift();
      if (chunk) {
        yield chunk;
        // The consumer asked for the next chunk: it is done with this one.
        const buffer = chunk.buffer as ArrayBuffer;
        this.post({ t: "used", buffer }, [buffer]);
      } else if (this.inputEnded) return;
      else await this.wait();
      if (this.aborted) throw abortError();
    }
  }
}

const port = parentPort;
if (port) {
  const post = (message: FromWorker, transfer?: ArrayBuffer[]) =>
    port.postMessage(message, transfer);
  let channel: TaskChannel | undefined;
  // Progress and written files go out in batches (a message costs tens of microseconds).
  let progressed = 0;
  let progressSent = 0;
  let files: [string, number, string][] = [];
  const progress = (bytes: number) => {
    progressed += bytes;
    if (progressed < 4 << 20) return;
    // At most ten a second: a job reads a GB in a second or two, and on a busy machine the
    // messages of every 4 MiB took a few percent of a backup job's time.
    const now = Date.now();
    if (now - progressSent < 100) return;
    progressSent = now;
    post({ t: "progress", bytes: progressed });
    progressed = 0;
  };
  let blocks: [string, number][] = [];
  const flushFiles = () => {
    if (files.length > 0) post({ t: "files", files });
    if (blocks.length > 0) post({ t: "blocks", files: blocks });
    files = [];
    blocks = [];
  };
  const file = (path: string, size: number, sha256: string) => {
    files.push([path, size, sha256]);
    if (files.length >= 256) flushFiles();
  };
  const flushProgress = () => {
    flushFiles();
    if (progressed > 0) post({ t: "progress", bytes: progressed });
    progressed = 0;
  };
  const run = async (message: ToWorker & { t: "pack" | "unpack" | "hash" }, task: TaskChannel) => {
    try {
      const result =
        message.t === "hash"
          ? await hashFiles(message.task)
          : message.t === "pack"
            ? await packBundle(message.task, {
                output: (chunk) => task.output(chunk),
                progress,
              })
            : await unpackBundle(message.task, task.chunks(), {
                file,
                directory: (path, mode) => post({ t: "directory", path, mode }),
                blocks: (path, count) => {
                  blocks.push([path, count]);
                  if (blocks.length >= 256) flushFiles();
                },
                symlink: (path, target) => post({ t: "symlink", path, target }),
                progress,
              });
      channel = undefined;
      flushProgress();
      post({ t: "done", result });
    } catch (error) {
      channel = undefined;
      flushProgress();
      post({ t: "error", error: sendError(task.aborted ? abortError() : error) });
    }
  };
  port.on("message", (message: ToWorker) => {
    switch (message.t) {
      case "pack":
      case "unpack":
      case "hash":
        channel = new TaskChannel(post);
        void run(message, channel);
        break;
      case "credit":
        channel?.credit(message.bytes);
        break;
      case "input":
        channel?.push(message.chunk);
        break;
      case "end":
        channel?.end();
        break;
      case "abort":
        channel?.abort();
        break;
    }
  });
}
