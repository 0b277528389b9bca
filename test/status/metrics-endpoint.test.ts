/** The scheduler's metrics endpoint and the textfile writer (local effects only). */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseListenAddress, resolveFlags } from "../../src/config/flags.js";
import { memoryLogger } from "../../src/log.js";
import { type MetricsEndpoint, serveMetrics } from "../../src/status/metrics-server.js";
import { textfileName, writeTextfile } from "../../src/status/textfile.js";
import { freshDirPerTest } from "../helpers/temp-dir.js";

describe("serveMetrics", () => {
  let endpoint: MetricsEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });
  const get = (path: string) => fetch(`http://127.0.0.1:${endpoint?.port}${path}`);

  it("answers GET /metrics, reading at most once per interval", async () => {
    let reads = 0;
    const produce = async () => `pgha_backups{cluster="main"} ${++reads}\n`;
    endpoint = await serveMetrics({ host: "127.0.0.1", port: 0 }, produce, memoryLogger(), 60_000);
    const first = await get("/metrics");
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await first.text()).toBe('pgha_backups{cluster="main"} 1\n');
    const [a, b] = await Promise.all([get("/metrics"), get("/metrics?x=1")]);
    expect([await a.text(), await b.text()]).toEqual([
      'pgha_backups{cluster="main"} 1\n',
      'pgha_backups{cluster="main"} 1\n',
    ]);
    expect(reads).toBe(1);
    expect((await get("/")).status).toBe(404);
  });

  it("answers 503 with the error when the repository cannot be read, and tries again", async () => {
    let fail = true;
    const produce = async () => {
      if (fail) throw new Error("storage: connection refused");
      return "ok 1\n";
    };
    const log = memoryLogger();
    endpoint = await serveMetrics({ host: "127.0.0.1", port: 0 }, produce, log, 60_000);
    const failed = await get("/metrics");
    expect(failed.status).toBe(503);
    expect(await failed.text()).toBe("storage: connection refused\n");
    expect(log.lines).toEqual(["warn: metrics: storage: connection refused"]);
    fail = false;
    expect(await (await get("/metrics")).text()).toBe("ok 1\n");
  });
});

describe("writeTextfile", () => {
  const tmp = freshDirPerTest("pgha-textfile-");
  it("replaces the file whole, readable by the collector, leaving no temporary file", async () => {
    const dir = tmp.path;
    const name = textfileName("main");
    expect(name).toBe("pgha-main.prom");
    expect(textfileName(undefined)).toBe("pgha.prom");
    await writeTextfile(dir, name, "a 1\n");
    const path = await writeTextfile(dir, name, "a 2\n");
    expect(path).toBe(join(dir, name));
    expect(await readFile(path, "utf8")).toBe("a 2\n");
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual([name]);
  });

  it("fails as a local I/O error naming the file", async () => {
    await expect(writeTextfile("/nonexistent/dir", "pgha.prom", "a 1\n")).rejects.toMatchObject({
      exit: "localIo",
      message: expect.stringContaining("/nonexistent/dir/pgha.prom"),
    });
  });
});

describe("--metrics-listen", () => {
  it("takes host:port and [v6]:port", () => {
    expect(parseListenAddress("127.0.0.1:9187")).toEqual({ host: "127.0.0.1", port: 9187 });
    expect(parseListenAddress("[::1]:9187")).toEqual({ host: "::1", port: 9187 });
    expect(parseListenAddress("localhost:80")).toEqual({ host: "localhost", port: 80 });
  });

  it.each(["9187", ":9187", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9187"])(
    "refuses %s as a usage error naming the flag",
    (raw) => {
      expect(() => resolveFlags("schedule run", { metricsListen: raw })).toThrow(
        expect.objectContaining({
          exit: "usage",
          message: expect.stringMatching(/^--metrics-listen /),
        }),
      );
    },
  );
});
