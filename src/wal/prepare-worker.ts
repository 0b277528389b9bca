/** A PreparePool thread: runs prepareWalFile for the paths it is sent. */
import { parentPort, workerData } from "node:worker_threads";
import type { Compression } from "../compress/compression.js";
import { toWire } from "./prepare-pool.js";
import { prepareWalFile } from "./push.js";

const { compression } = workerData as { compression: Compression };

parentPort?.on("message", async ({ id, path }: { id: number; path: string }) => {
  try {
    parentPort?.postMessage({ id, prepared: await prepareWalFile(path, compression) });
  } catch (error) {
    parentPort?.postMessage({ id, error: toWire(error) });
  }
});
