/**
 * The one S3 server of the peer benchmark: s3rver with TLS (pgBackRest's S3 driver speaks
 * https only) behind a self-signed certificate made at run time, the proxy that adds a
 * per-request latency, and the bench's own view of the bucket (listing segments, freeing
 * a repository's space).
 */
import { chmod, readFile, rm } from "node:fs/promises";
import { createServer, type Socket, connect as tcpConnect } from "node:net";
import { basename, join } from "node:path";
import { listObjects, testS3Client } from "../test/helpers/s3-client.js";
import { type S3TestServer, startS3rver } from "../test/helpers/s3-server.js";
import { makeSelfSigned } from "../test/helpers/tls-ca.js";
import { log, onCleanup, tempDir } from "./common.js";

/** How a client reaches the server: directly, or through the latency proxy. */
export interface Endpoint {
  id: "loopback" | "latency";
  label: string;
  host: string;
  port: number;
  /** https://host:port */
  url: string;
}

export interface BenchS3 {
  server: S3TestServer;
  /** PEM file of the self-signed certificate (readable by the server user). */
  caFile: string;
  loopback: Endpoint;
  /** s3rver's directory (a bucket is a directory under it, an object a file). */
  directory: string;
  /** Segment names stored under `prefix` (a segment object's name starts with it), with their sizes. */
  segments(prefix: string): Promise<Map<string, number>>;
  /** Frees the space of everything under `prefix` (removes s3rver's files directly). */
  removePrefix(prefix: string): Promise<void>;
}

/**
 * The environment that makes pgha trust the test server's certificate: --s3-ca-file, read
 * only when a TLS connection opens (NODE_EXTRA_CA_CERTS would cost every process start).
 */
export function pghaTlsEnv(caFile: string): Record<string, string> {
  return { PGHA_S3_CA_FILE: caFile };
}

/** A segment object's name: the WAL file name, then pgBackRest's "-sha1" and extension. */
const SEGMENT_OBJECT = /^([0-9A-F]{24})(?:-[0-9a-f]{40})?(?:\.[a-z0-9]+)?$/;

async function makeCertificate(): Promise<{ keyFile: string; certFile: string }> {
  const dir = await tempDir("pgha-bench-tls-", 0o755);
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  makeSelfSigned({ keyFile, certFile }, "/CN=127.0.0.1", [
    // Node checks an IP host against IP names; pgBackRest compares the host with DNS names.
    "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost",
    "basicConstraints=critical,CA:TRUE",
  ]);
  await chmod(certFile, 0o644);
  return { keyFile, certFile };
}

export async function startBenchS3(): Promise<BenchS3> {
  const tls = await makeCertificate();
  const running = await startS3rver({ tls });
  onCleanup("S3 test server", () => running.stop());
  const { server } = running;
  const directory = running.directory;
  if (!directory) throw new Error("s3rver did not report its directory");
  const url = new URL(server.endpoint);
  const loopback: Endpoint = {
    id: "loopback",
    label: "loopback",
    host: url.hostname,
    port: Number(url.port),
    url: server.endpoint,
  };
  const client = testS3Client(server, await readFile(tls.certFile));
  onCleanup("bench S3 client", async () => client.destroy());

  log(`S3: s3rver with TLS at ${server.endpoint} (self-signed certificate ${tls.certFile})`);
  return {
    server,
    caFile: tls.certFile,
    loopback,
    directory,
    async segments(prefix) {
      const found = new Map<string, number>();
      for await (const { key, size } of listObjects(client, server.bucket, prefix)) {
        const name = SEGMENT_OBJECT.exec(basename(key))?.[1];
        if (name) found.set(name, size);
      }
      return found;
    },
    async removePrefix(prefix) {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(prefix)) throw new Error(`odd prefix ${prefix}`);
      await rm(join(directory, server.bucket, prefix), { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy in front of the server that holds every client-to-server chunk for
 * `delayMs` (in order) and passes responses at once: each request waits `delayMs` before
 * the server sees it, as with a server in a remote region (a new TLS connection pays it
 * twice, for its handshake). Kept-alive connections are fine: each request's first bytes
 * wait.
 */
export async function startLatencyProxy(target: Endpoint, delayMs: number): Promise<Endpoint> {
  const sockets = new Set<Socket>();
  const highWater = 32 * 1024 * 1024;
  const proxy = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let held = 0;
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("data", (chunk: Buffer) => {
      held += chunk.length;
      if (held > highWater) client.pause();
      setTimeout(() => {
        held -= chunk.length;
        if (!upstream.destroyed) upstream.write(chunk);
        if (held <= highWater && client.isPaused()) client.resume();
      }, delayMs);
    });
    client.on("end", () => setTimeout(() => upstream.end(), delayMs));
    upstream.pipe(client);
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", () => setTimeout(close, delayMs + 10));
    upstream.on("close", close);
  });
  const port = await new Promise<number>((resolve, reject) => {
    proxy.once("error", reject);
    proxy.listen(0, "127.0.0.1", () => {
      const address = proxy.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
  onCleanup("latency proxy", async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });
  log(`latency proxy: 127.0.0.1:${port} -> ${target.port}, +${delayMs} ms per request`);
  return {
    id: "latency",
    label: `+${delayMs} ms`,
    host: "127.0.0.1",
    port,
    url: `https://127.0.0.1:${port}`,
  };
}
