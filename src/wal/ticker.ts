/**
 * The heartbeat of the background processes (archiver, prefetcher): a step every tick, or at
 * once when something changed in the directories they watch (inotify through fs.watch;
 * where that is not available, the tick alone still finds every change).
 */
import { watch } from "node:fs";

export class Ticker {
  private wake: (() => void) | undefined;
  private watchers: ReturnType<typeof watch>[] = [];
  stopped = false;

  constructor(private readonly tickMs: number) {}

  /** Look again now. */
  poke(): void {
    this.wake?.();
  }

  stop(): void {
    this.stopped = true;
    this.poke();
  }

  /** Pokes on every change in these directories until close(). */
  watch(dirs: readonly string[]): void {
    for (const dir of dirs) {
      try {
        this.watchers.push(watch(dir, () => this.poke()));
      } catch {
        // polling alone still works
      }
    }
  }

  /** One tick, or less when poked or stopped. */
  async wait(): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.tickMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** Runs task for name in the background, in `inflight` meanwhile; looks again when it ends. */
  start(inflight: Set<string>, name: string, task: () => Promise<void>): void {
    inflight.add(name);
    void task().finally(() => {
      inflight.delete(name);
      this.poke();
    });
  }

  /** Stops watching; waits for the work still in flight. */
  async close(inflight: ReadonlySet<unknown>): Promise<void> {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    while (inflight.size > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
