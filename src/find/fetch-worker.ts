/** A FetchThread's thread: fetches (checks, decompresses, writes) the segments it is sent. */
import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config/load.js";
import { stderrLogger } from "../log.js";
import { openStore } from "../storage/open-store.js";
import { fetchWalFile } from "../wal/fetch.js";
import { toWire } from "../wal/prepare-pool.js";

const { config } = workerData as { config: Config };
const log = stderrLogger(config.logLevel, "pgha");
const store = openStore(config, log);

parentPort?.on(
  "message",
  async ({ id, name, dest }: { id: number; name: string; dest: string }) => {
    try {
      await fetchWalFile(
        { store: await store, cluster: config.cluster, log, durable: false },
        name,
        dest,
      );
      parentPort?.postMessage({ id });
    } catch (error) {
      parentPort?.postMessage({ id, error: toWire(error) });
    }
  },
);
