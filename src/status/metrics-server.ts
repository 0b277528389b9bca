/**
 * The opt-in metrics endpoint of `pgha schedule run --metrics-listen`: GET /metrics answers
 * with the Prometheus text `pgha metrics` prints. The repository is read at most once per
 * `minIntervalMs` (scrapes in between get the last text; concurrent ones share one read),
 * so a tight scrape interval does not list a large repository over and over. A failed
 * read answers 503 with the error, which Prometheus records as the target down.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";

export interface MetricsEndpoint {
  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  port: number;
  close(): Promise<void>;
}

export async function serveMetrics(
  address: { host: string; port: number },
  produce: () => Promise<string>,
  log: Logger,
  minIntervalMs = 15_000,
): Promise<MetricsEndpoint> {
  let last: { at: number; text: string } | undefined;
  let inflight: Promise<string> | undefined;
  const current = (): Promise<string> => {
    if (last && Date.now() - last.at < minIntervalMs) return Promise.resolve(last.text);
    inflight ??= produce()
      .then((text) => {
        last = { at: Date.now(), text };
        return text;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (request.method !== "GET" || path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("try GET /metrics\n");
      return;
    }
    current().then(
      (text) => {
        response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        response.end(text);
      },
      (error: Error) => {
        log.warn(`metrics: ${error.message}`);
        response.writeHead(503, { "content-type": "text/plain" }).end(`${error.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
