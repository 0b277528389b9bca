/**
 * S3 ObjectStore over node:http(s), signed with sigv4.ts: what openStore() gives S3
 * repositories when the credentials are static keys (aws-credentials.ts). Importing the
 * AWS SDK costs ~70 ms per process, more than all else a wal-fetch does, and PostgreSQL
 * starts one process per WAL segment; so the requests of wal-push and wal-fetch (HEAD,
 * GET, a single PUT, DELETE, the conditional-write probe) are made here, and what needs
 * more of S3 is handed to the SDK-based S3Store, loaded on first use: multipart uploads
 * (stream bodies, bodies over --s3-part-size) and listings.
 *
 * Same contracts, capabilities and error classification (s3-errors.ts) as S3Store; both
 * pass test/storage/conformance.ts against the test server, which checks every signature.
 *
 * - Addressing like the SDK (s3Address).
 * - Keep-alive: the requests of one process share one connection (one TLS handshake).
 * - Every PUT carries Content-MD5, signed, so the server verifies every byte; the payload
 *   hash is signed over http, and UNSIGNED-PAYLOAD over https (TLS protects the body, and
 *   the signed Content-MD5 binds it). The response's ETag tells whether the server stored
 *   those bytes (s3-etag.ts).
 * - Timeouts as S3Store's: 5 s to connect, 60 s without progress on the socket.
 * - --s3-ca-file: see s3-tls.ts; a connection first trusts the file alone and, when the
 *   certificate does not chain to it, is made again with Node's roots added.
 */
import { createHash } from "node:crypto";
import type { Agent, IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { NotFoundError } from "../errors.js";
import type * as Store from "./object-store.js";
import {
  assertValidKey,
  assertValidMetadata,
  learnAtomicIfAbsent,
  PROBE_BODY,
  refuseIfPresent,
} from "./object-store.js";
import { classify } from "./s3-errors.js";
import { etagIsMd5 } from "./s3-etag.js";
import type { S3Settings } from "./s3-settings.js";
import type { CaFile, Trust } from "./s3-tls.js";
import {
  type AwsCredentials,
  authorization,
  EMPTY_SHA256,
  toAmzDate,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "./sigv4.js";

interface Request {
  method: "GET" | "HEAD" | "PUT" | "DELETE";
  key: string;
  /** For messages and retries: "PUT s3://bucket/prefix/key". */
  what: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

type Transport = typeof import("node:http") | typeof import("node:https");

const CONNECT_TIMEOUT_MS = 5000;
const IDLE_TIMEOUT_MS = 60_000;

export class S3HttpStore implements Store.ObjectStore {
  readonly url: string;
  capabilities: Store.StoreCapabilities = {
    atomicIfAbsent: "unknown",
    atomicReplace: "unknown",
    durableWhenVisible: true,
  };
  private readonly secure: boolean;
  private readonly hostname: string;
  private readonly port: string;
  private readonly authority: string;
  private readonly basePath: string;
  private transport: Transport | undefined;
  private agent: Agent | undefined;
  private caFile: CaFile | undefined;
  private trust: Trust = "file";
  private sdk: Promise<Store.ObjectStore & { capabilities: Store.StoreCapabilities }> | undefined;

  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly settings: S3Settings,
    private readonly credentials: AwsCredentials,
  ) {
    this.url = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
    ({
      secure: this.secure,
      hostname: this.hostname,
      port: this.port,
      authority: this.authority,
      basePath: this.basePath,
    } = s3Address(bucket, settings));
  }

  /**
   * Why S3HttpStore cannot serve these settings the way the SDK would, if it cannot:
   * openStore() then uses S3Store. AWS partitions other than the commercial and China
   * ones, and S3 Express directory buckets (their own session auth), are the SDK's.
   */
  static unsupported(bucket: string, settings: S3Settings): string | undefined {
    if (bucket.endsWith("--x-s3")) return "an S3 Express directory bucket";
    if (!settings.endpoint && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(settings.region))
      return `region '${settings.region}'`;
    if (!settings.endpoint && /^(us|eu)-iso/.test(settings.region))
      return `region '${settings.region}'`;
    return undefined;
  }

  private path(key: string): string {
    assertValidKey(key);
    return `${this.basePath}/${uriEncode(this.prefix ? `${this.prefix}/${key}` : key, true)}`;
  }

  head(key: string): Promise<Store.ObjectInfo | undefined> {
    return this.headObject(key, undefined);
  }

  private async headObject(key: string, retry: Store.RequestRetry | undefined) {
    const request: Request = { method: "HEAD", key, what: `HEAD ${this.url}/${key}` };
    try {
      const res = await this.send(request, retry);
      res.resume();
      return { key, size: contentLength(res.headers), metadata: metadataOf(res.headers) };
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    const res = await this.send({ method: "GET", key, what: `GET ${this.url}/${key}` });
    const info = { key, size: contentLength(res.headers), metadata: metadataOf(res.headers) };
    return { info, body: res };
  }

  async getFrom(
    key: string,
    from: number,
  ): Promise<{ info: Store.ObjectInfo; body: Readable; start: number }> {
    const res = await this.send({
      method: "GET",
      key,
      what: `GET ${this.url}/${key} from byte ${from}`,
      headers: { range: `bytes=${from}-` },
    });
    const answer = rangedAnswer(key, res.statusCode, {
      contentRange: header(res.headers, "content-range"),
      contentLength: contentLength(res.headers),
      metadata: metadataOf(res.headers),
      body: res,
    });
    return answer ?? { ...(await this.get(key)), start: 0 };
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    if (!(body instanceof Uint8Array) || body.length > this.settings.partSize) {
      // A stream may need a multipart upload: that is the SDK store's.
      return (await this.delegate()).put(key, body, options);
    }
    this.path(key);
    const metadata = { ...(options.metadata ?? {}) };
    assertValidMetadata(metadata);
    const retry = options.retryRequest;
    // If-None-Match alone is enough only where the server is known to honour it.
    await refuseIfPresent(key, options, this.capabilities, () => this.headObject(key, retry));
    const data = Buffer.from(body.buffer, body.byteOffset, body.length);
    const verified = await this.putObject(key, data, metadata, options.ifAbsent === true, retry);
    return { key, size: data.length, metadata, verified };
  }

  /** One PutObject; resolves to whether its ETag proves the bytes stored (s3-etag.ts). */
  private async putObject(
    key: string,
    data: Buffer,
    metadata: Record<string, string>,
    ifAbsent: boolean,
    retry?: Store.RequestRetry,
  ): Promise<boolean> {
    const md5 = createHash("md5").update(data).digest();
    const headers: Record<string, string> = { "content-md5": md5.toString("base64") };
    if (ifAbsent) headers["if-none-match"] = "*";
    for (const [name, value] of Object.entries(metadata)) headers[`x-amz-meta-${name}`] = value;
    const { storageClass, sse, sseKmsKeyId } = this.settings;
    if (storageClass) headers["x-amz-storage-class"] = storageClass;
    if (sse) headers["x-amz-server-side-encryption"] = sse;
    if (sseKmsKeyId) headers["x-amz-server-side-encryption-aws-kms-key-id"] = sseKmsKeyId;
    const request: Request = {
      method: "PUT",
      key,
      what: `PUT ${this.url}/${key}`,
      headers,
      body: data,
    };
    const res = await this.send(request, retry);
    res.resume();
    return etagIsMd5(
      header(res.headers, "etag"),
      md5,
      header(res.headers, "x-amz-server-side-encryption"),
      header(res.headers, "x-amz-server-side-encryption-customer-algorithm"),
    );
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    yield* (await this.delegate()).list(prefix, options);
  }

  async durable(key: string): Promise<void> {
    this.path(key);
  }

  async delete(key: string): Promise<void> {
    const res = await this.send({ method: "DELETE", key, what: `DELETE ${this.url}/${key}` });
    res.resume();
  }

  async learnCapabilities(
    probeKey: string,
    known?: Partial<Store.StoreCapabilities>,
  ): Promise<Partial<Store.StoreCapabilities>> {
    const atomicIfAbsent = await learnAtomicIfAbsent(this.capabilities, known, () =>
      this.putObject(probeKey, PROBE_BODY, {}, true),
    );
    if (atomicIfAbsent === undefined) return {};
    this.capabilities = { ...this.capabilities, atomicIfAbsent };
    return { atomicIfAbsent };
  }

  /** The SDK-based store for what this one hands over; it relies on what this one learned. */
  private async delegate(): Promise<Store.ObjectStore> {
    this.sdk ??= import("./s3.js").then(
      ({ S3Store }) => new S3Store(this.bucket, this.prefix, this.settings, this.credentials),
    );
    const sdk = await this.sdk;
    sdk.capabilities = this.capabilities;
    return sdk;
  }

  /** One request, its failure classified; through `retry` when a put passes one. */
  private send(request: Request, retry?: Store.RequestRetry): Promise<IncomingMessage> {
    const once = async () => {
      try {
        return await this.exchange(request);
      } catch (error) {
        if (this.caFile && this.trust === "file" && (await this.tls()).isUntrustedChain(error)) {
          // Not issued under --s3-ca-file: trust Node's roots too, and connect again.
          this.trust = "file-and-roots";
          this.agent = undefined;
          return this.send(request);
        }
        throw classify(error, request.what, this.url);
      }
    };
    return retry ? retry(request.what, once) : once();
  }

  private tls(): Promise<typeof import("./s3-tls.js")> {
    return import("./s3-tls.js");
  }

  private async connection(): Promise<{ transport: Transport; agent: Agent }> {
    this.transport ??= this.secure ? await import("node:https") : await import("node:http");
    if (!this.agent) {
      if (this.secure && this.settings.caFile) {
        const tls = await this.tls();
        this.caFile ??= new tls.CaFile(this.settings.caFile);
        // Reads the file now, so that an unreadable one fails this request as such.
        this.caFile.certificates();
        this.agent = tls.trustingAgent(this.caFile, this.trust);
      } else {
        this.agent = new this.transport.Agent({ keepAlive: true });
      }
    }
    return { transport: this.transport, agent: this.agent };
  }

  /** Signs and sends one request; resolves with a 2xx response, else rejects. */
  private async exchange(request: Request): Promise<IncomingMessage> {
    const { transport, agent } = await this.connection();
    const body = request.body;
    const payloadHash =
      body === undefined
        ? EMPTY_SHA256
        : this.secure
          ? UNSIGNED_PAYLOAD
          : createHash("sha256").update(body).digest("hex");
    const path = this.path(request.key);
    const headers: Record<string, string> = {
      ...request.headers,
      host: this.authority,
      "x-amz-date": toAmzDate(new Date()),
      "x-amz-content-sha256": payloadHash,
    };
    if (this.credentials.sessionToken)
      headers["x-amz-security-token"] = this.credentials.sessionToken;
    if (body !== undefined) headers["content-length"] = String(body.length);
    headers.authorization = authorization(
      { method: request.method, path, query: [], headers, payloadHash },
      {
        credentials: this.credentials,
        region: this.settings.region,
        service: "s3",
        amzDate: headers["x-amz-date"] ?? "",
      },
    );
    return new Promise((resolve, reject) => {
      const req = transport.request({
        method: request.method,
        hostname: this.hostname,
        ...(this.port ? { port: this.port } : {}),
        path,
        headers,
        agent,
        timeout: IDLE_TIMEOUT_MS,
      });
      let connectTimer: NodeJS.Timeout | undefined;
      req.once("socket", (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => req.destroy(timeoutError(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)),
          CONNECT_TIMEOUT_MS,
        );
        socket.once("connect", () => clearTimeout(connectTimer));
      });
      req.on("timeout", () =>
        req.destroy(timeoutError(`no progress for ${IDLE_TIMEOUT_MS / 1000} s`)),
      );
      req.on("error", (error) => {
        clearTimeout(connectTimer);
        reject(error);
      });
      req.once("response", (res) => {
        clearTimeout(connectTimer);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(res);
        else responseError(res, status).then(reject, reject);
      });
      req.end(body);
    });
  }
}

export interface S3Address {
  secure: boolean;
  /** Where connections go ("" port: the scheme's). */
  hostname: string;
  port: string;
  /** The Host header. */
  authority: string;
  /** The endpoint's path, and /bucket with path-style addressing; keys follow it. */
  basePath: string;
}

/**
 * Where a bucket's requests go, as the SDK addresses them: path-style with
 * --s3-force-path-style, with an IP address as host, and for bucket names with dots over
 * https (a wildcard certificate does not cover them); virtual-hosted otherwise.
 */
export function s3Address(bucket: string, settings: S3Settings): S3Address {
  const endpoint = new URL(settings.endpoint ?? awsEndpoint(settings.region));
  const secure = endpoint.protocol === "https:";
  const isIp = /^\d+\.\d+\.\d+\.\d+$|^\[/.test(endpoint.hostname);
  const virtual = !settings.forcePathStyle && !isIp && (!secure || !bucket.includes("."));
  const base = endpoint.pathname.replace(/\/+$/, "");
  return {
    secure,
    hostname: virtual ? `${bucket}.${endpoint.hostname}` : endpoint.hostname,
    port: endpoint.port,
    authority: virtual ? `${bucket}.${endpoint.host}` : endpoint.host,
    basePath: virtual ? base : `${base}/${uriEncode(bucket)}`,
  };
}

/** The SDK's endpoint for a region of the commercial or the China partition. */
function awsEndpoint(region: string): string {
  return `https://s3.${region}.${region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com"}`;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * getFrom's result from a ranged GET's answer (both S3 clients): a server that ignores
 * ranges answers 200 with the whole body (start 0); undefined (the body destroyed) for a
 * 206 whose Content-Range this cannot read ("bytes 5-9/*"): the caller GETs it whole.
 */
export function rangedAnswer(
  key: string,
  status: number | undefined,
  answer: {
    contentRange: string | undefined;
    contentLength: number;
    metadata: Record<string, string>;
    body: Readable;
  },
): { info: Store.ObjectInfo; body: Readable; start: number } | undefined {
  const { metadata, body } = answer;
  if (status !== 206)
    return { info: { key, size: answer.contentLength, metadata }, body, start: 0 };
  const range = contentRange(answer.contentRange);
  if (!range) {
    body.destroy();
    return undefined;
  }
  return { info: { key, size: range.size, metadata }, body, start: range.start };
}

/** A Content-Range header's first byte and the whole object's size ("bytes 5-9/10"). */
export function contentRange(
  value: string | undefined,
): { start: number; size: number } | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+)$/.exec(value ?? "");
  return match ? { start: Number(match[1]), size: Number(match[2]) } : undefined;
}

function contentLength(headers: IncomingHttpHeaders): number {
  return Number(header(headers, "content-length") ?? 0);
}

function metadataOf(headers: IncomingHttpHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith("x-amz-meta-") && typeof value === "string")
      metadata[name.slice("x-amz-meta-".length)] = value;
  }
  return metadata;
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: "TimeoutError" });
}

const STATUS_NAMES: Record<number, string> = {
  301: "PermanentRedirect",
  307: "TemporaryRedirect",
  400: "BadRequest",
  403: "Forbidden",
  404: "NotFound",
  412: "PreconditionFailed",
};

/**
 * An error response in the SDK's shape for classify(): name = the S3 error code from the
 * XML body (HEAD has none: a name for the status), $metadata.httpStatusCode = status.
 */
async function responseError(res: IncomingMessage, status: number): Promise<Error> {
  let text = "";
  try {
    for await (const chunk of res) {
      if (text.length < 65_536) text += (chunk as Buffer).toString("utf8");
    }
  } catch {
    // The status says enough.
  }
  const code = xmlField(text, "Code") ?? STATUS_NAMES[status] ?? `HTTP${status}`;
  let message = xmlField(text, "Message") ?? `HTTP ${status}`;
  const region = header(res.headers, "x-amz-bucket-region");
  if (region) message += ` (the bucket is in region ${region}: set --s3-region)`;
  // $response as the SDK's errors have it: classify() reads the Date of a bodiless 403.
  return Object.assign(new Error(message), {
    name: code,
    $metadata: { httpStatusCode: status },
    $response: { headers: res.headers },
  });
}

function xmlField(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!match?.[1]) return undefined;
  return match[1]
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
