import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { StorageError } from "../../src/errors.js";
import type { RequestRetry } from "../../src/storage/object-store.js";
import { defaultRetryPolicy, withRetry } from "../../src/storage/retry.js";
import { addRetries, resumingGet } from "../../src/storage/retrying-store.js";
import { S3Store } from "../../src/storage/s3.js";
import { S3HttpStore } from "../../src/storage/s3-http-store.js";
import { readAll } from "../../src/storage/streams.js";
import { s3Server } from "../helpers/components.js";
import { freePort } from "../helpers/pg-cluster.js";
import { describeS3Conformance, testS3Settings } from "../helpers/s3-stores.js";

const server = s3Server();

const settings = (endpoint: string) =>
  testS3Settings(endpoint, { region: server?.region ?? "us-east-1" });

const credentials = server && {
  accessKeyId: server.accessKeyId,
  secretAccessKey: server.secretAccessKey,
};

if (server && credentials) {
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  for (const [name, make] of [
    ["S3Store", (prefix: string) => new S3Store(server.bucket, prefix, settings(server.endpoint))],
    [
      "S3HttpStore",
      (prefix: string) =>
        new S3HttpStore(server.bucket, prefix, settings(server.endpoint), credentials),
    ],
  ] as const)
    describeS3Conformance(
      `s3 ${name} (${server.kind})`,
      "conformance",
      make,
      server.conditionalWrites,
    );
}

describe.skipIf(!server)("the test S3 server checks signatures", () => {
  it("refuses a request signed with the wrong secret, as S3 does", async () => {
    if (!server) return;
    const wrong = { accessKeyId: server.accessKeyId, secretAccessKey: "not-the-secret" };
    const store = new S3HttpStore(server.bucket, "sig", settings(server.endpoint), wrong);
    const error = await store.put("k", Buffer.from("x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(/access denied \(SignatureDoesNotMatch\)/);
  });
});

describe.skipIf(!server)("S3Store failures", () => {
  it("retries an unreachable endpoint within the time budget, then fails as transient storage", async () => {
    const port = await freePort();
    const store = addRetries(
      new S3Store("bucket", "p", settings(`http://127.0.0.1:${port}`)),
      defaultRetryPolicy(1500),
    );
    const started = Date.now();
    const error = await store.head("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(true);
    expect((error as StorageError).message).toMatch(/attempt/);
    expect(Date.now() - started).toBeLessThan(6000);
  });

  it("names a missing bucket as a non-transient error with a hint", async () => {
    if (!server) return;
    const store = addRetries(
      new S3Store("no-such-bucket-pgha", "", settings(server.endpoint)),
      defaultRetryPolicy(2000),
    );
    const error = await store.put("k", Buffer.from("x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(false);
    expect((error as StorageError).hint).toMatch(/bucket/);
  });

  it("runs every request of a multipart put through the wrapper's retry: a failed part is retried alone", async () => {
    if (!server) return;
    const prefix = `retry-parts-${randomBytes(4).toString("hex")}`;
    const store = new S3Store(server.bucket, prefix, settings(server.endpoint));
    const policy = { ...defaultRetryPolicy(20_000), sleep: async () => undefined };
    const requests: string[] = [];
    let injected = false;
    const retryRequest: RequestRetry = (what, request) =>
      withRetry(policy, what, async () => {
        requests.push(what.replace(/ s3:.*/, ""));
        if (!injected && what.startsWith("upload part 2 ")) {
          injected = true;
          throw new StorageError("injected: connection reset", { transient: true });
        }
        return request();
      });
    const data = randomBytes(12 * 1024 * 1024);
    let reads = 0;
    const body = Readable.from(
      (async function* () {
        for (let at = 0; at < data.length; at += 1 << 20) {
          reads++;
          yield data.subarray(at, at + (1 << 20));
        }
      })(),
    );
    const stored = await store.put("k", body, { ifAbsent: true, retryRequest });
    expect(stored.size).toBe(data.length);
    expect(reads).toBe(12);
    expect(requests).toEqual([
      "HEAD",
      "create multipart upload",
      "upload part 1 of",
      "upload part 2 of",
      "upload part 2 of",
      "upload part 3 of",
      "complete multipart upload",
    ]);
    const got = await store.get("k");
    expect((await readAll(got.body)).equals(data)).toBe(true);
    await store.delete("k");
  });

  it("reads the next part while one uploads, and aborts only once no part is in flight", async () => {
    if (!server) return;
    const prefix = `overlap-${randomBytes(4).toString("hex")}`;
    const store = new S3Store(server.bucket, prefix, settings(server.endpoint));
    let reads = 0;
    let inFlight = 0;
    const events: string[] = [];
    const retryRequest: RequestRetry = async (what, request) => {
      const name = what.replace(/ s3:.*/, "");
      if (name === "upload part 2 of") {
        // Parts 1 and 2 are read before the upload is created (a body of one part is a
        // single PUT); part 3 (chunks 11-12) is read while part 2 is still uploading.
        const deadline = Date.now() + 5000;
        while (reads < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        events.push(`part 2 uploads after ${reads} reads`);
      }
      if (name.startsWith("abort")) events.push(`abort with ${inFlight} in flight`);
      inFlight++;
      try {
        return await request();
      } finally {
        inFlight--;
      }
    };
    const data = randomBytes(12 * 1024 * 1024);
    const bodyOf = (fail: boolean) =>
      Readable.from(
        (async function* () {
          for (let at = 0; at < data.length; at += 1 << 20) {
            reads++;
            yield data.subarray(at, at + (1 << 20));
          }
          if (fail) throw new Error("injected: the producer failed");
        })(),
      );
    const stored = await store.put("k", bodyOf(false), { retryRequest });
    expect(stored.size).toBe(data.length);
    expect((await readAll((await store.get("k")).body)).equals(data)).toBe(true);
    expect(events).toEqual(["part 2 uploads after 12 reads"]);

    reads = 0;
    events.length = 0;
    await expect(store.put("k2", bodyOf(true), { retryRequest })).rejects.toThrow(
      /injected: the producer failed/,
    );
    expect(events).toEqual(["part 2 uploads after 12 reads", "abort with 0 in flight"]);
    expect(await store.head("k2")).toBeUndefined();
    await store.delete("k");
  });
});

describe.skipIf(!server)(
  "S3 stores: what a PUT proves, and conditional writes learned once",
  () => {
    const stores = () => {
      if (!server || !credentials) throw new Error("no server");
      const prefix = `learn-${randomBytes(4).toString("hex")}`;
      return [
        new S3Store(server.bucket, prefix, settings(server.endpoint)),
        new S3HttpStore(server.bucket, prefix, settings(server.endpoint), credentials),
      ];
    };
    const requestsOf = () => {
      const made: string[] = [];
      const retryRequest: RequestRetry = (what, request) => {
        made.push(what.replace(/ s3:.*/, ""));
        return request();
      };
      return { made, retryRequest };
    };

    it("a single PUT is verified by its ETag (the body's MD5), a multipart upload is not", async () => {
      for (const store of stores()) {
        const single = await store.put("single", randomBytes(1000));
        expect(single.verified, store.constructor.name).toBe(true);
        const multi = await store.put("multi", Readable.from([randomBytes(6 * 1024 * 1024)]));
        expect(multi.verified ?? false, store.constructor.name).toBe(false);
        await store.delete("single");
        await store.delete("multi");
      }
    });

    it("probes whether the server honours If-None-Match, and then relies on the answer", async () => {
      for (const store of stores()) {
        const name = store.constructor.name;
        const learned = await store.learnCapabilities("probe/if-none-match");
        expect(learned, name).toEqual({ atomicIfAbsent: server?.conditionalWrites });
        expect(store.capabilities.atomicIfAbsent, name).toBe(server?.conditionalWrites);
        // Asked again, it does not probe again.
        expect(await store.learnCapabilities("probe/if-none-match"), name).toEqual({});

        // Not honoured: a HEAD before the conditional PUT.
        await store.learnCapabilities("probe/x", { atomicIfAbsent: false });
        const before = requestsOf();
        await store.put("k1", Buffer.from("one"), { ifAbsent: true, ...before });
        expect(before.made, name).toEqual(["HEAD", "PUT"]);
        // Honoured (what an earlier probe found): the PUT alone.
        await store.learnCapabilities("probe/x", { atomicIfAbsent: true });
        const alone = requestsOf();
        await store.put("k2", Buffer.from("two"), { ifAbsent: true, ...alone });
        expect(alone.made, name).toEqual(["PUT"]);
        for (const key of ["probe/if-none-match", "k1", "k2"]) await store.delete(key);
      }
    });
  },
);

describe.skipIf(!server)("a download the network cuts in the middle (resumingGet)", () => {
  /**
   * A TCP proxy to the S3 server that cuts the connection carrying the first response to
   * a GET of `key` once `after` bytes of it went through: a connection reset mid-object.
   */
  async function cuttingProxy(target: URL, key: string, after: number) {
    const { createServer, connect } = await import("node:net");
    const state = { cuts: 0, ranges: [] as string[] };
    const open = new Set<{ destroy(): void }>();
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      open.add(client).add(upstream);
      let armed = false;
      let passed = 0;
      client.on("data", (data: Buffer) => {
        const line = data.toString("latin1", 0, 2000);
        const range = /\r\nrange: *([^\r]*)/i.exec(line)?.[1];
        if (line.startsWith("GET ") && line.split(" ")[1]?.includes(key) && range)
          state.ranges.push(range);
        if (state.cuts === 0 && line.startsWith("GET ") && line.split(" ")[1]?.includes(key))
          armed = true;
        upstream.write(data);
      });
      upstream.on("data", (data: Buffer) => {
        if (armed && state.cuts === 0) {
          passed += data.length;
          if (passed > after) {
            state.cuts++;
            client.resetAndDestroy();
            upstream.destroy();
            return;
          }
        }
        client.write(data);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const address = proxy.address() as { port: number };
    return {
      endpoint: `${target.protocol}//127.0.0.1:${address.port}`,
      state,
      // Kept-alive connections would hold close() until their idle timeout.
      close: () =>
        new Promise<void>((resolve) => {
          proxy.close(() => resolve());
          for (const socket of open) socket.destroy();
        }),
    };
  }

  for (const kind of ["S3Store", "S3HttpStore"] as const) {
    it(`${kind}: the body goes on where it broke, each byte once`, async () => {
      if (!server || !credentials) return;
      const prefix = `resume-${randomBytes(4).toString("hex")}`;
      const make = (endpoint: string) =>
        kind === "S3Store"
          ? new S3Store(server.bucket, prefix, settings(endpoint))
          : new S3HttpStore(server.bucket, prefix, settings(endpoint), credentials);
      const data = randomBytes(3 << 20);
      await make(server.endpoint).put("big", data);
      const proxy = await cuttingProxy(new URL(server.endpoint), `${prefix}/big`, 1 << 20);
      try {
        const store = addRetries(make(proxy.endpoint), defaultRetryPolicy(20_000));
        const got = await resumingGet(store, "big");
        const parts: Buffer[] = [];
        for await (const part of got.chunks) parts.push(part);
        const read = Buffer.concat(parts);
        expect(proxy.state.cuts).toBe(1);
        // Asked again for the rest only (a ranged GET), from where the body broke.
        expect(proxy.state.ranges).toHaveLength(1);
        expect(proxy.state.ranges[0]).toMatch(/^bytes=\d+-$/);
        // (what the reader had when the connection broke: less than went through the proxy)
        expect(Number(/\d+/.exec(proxy.state.ranges[0] ?? "")?.[0])).toBeGreaterThan(0);
        expect(read.length).toBe(data.length);
        expect(read.equals(data)).toBe(true);
      } finally {
        await proxy.close();
      }
    });
  }
});

describe.skipIf(!server)("a host whose clock is off", () => {
  it.each(["S3HttpStore", "S3Store"] as const)(
    "%s: is told so, not that its credentials are denied (HEAD, GET and PUT)",
    async (kind) => {
      if (!server || !credentials) return;
      const prefix = `skew-${randomBytes(4).toString("hex")}`;
      const store =
        kind === "S3Store"
          ? new S3Store(server.bucket, prefix, settings(server.endpoint))
          : new S3HttpStore(server.bucket, prefix, settings(server.endpoint), credentials);
      await store.put("k", Buffer.from("x"));
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 40 * 60_000 });
      try {
        // The SDK sets its own clock right from the first refusal (its clock skew
        // correction), so only its first request is refused.
        const requests = [
          () => store.head("k"),
          () => store.get("k"),
          () => store.put("j", Buffer.from("y")),
        ];
        for (const request of kind === "S3Store" ? requests.slice(0, 1) : requests) {
          const error = await request().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StorageError);
          expect((error as StorageError).transient).toBe(false);
          expect((error as StorageError).message).toMatch(/clock is off/);
          expect((error as StorageError).hint).toMatch(/clock right/);
        }
      } finally {
        vi.useRealTimers();
      }
    },
  );
});
