/**
 * S3 ObjectStore (@aws-sdk/client-s3) for AWS S3 and S3-compatible stores (MinIO, Ceph,
 * s3rver). Loaded lazily by open-store.ts: a local repository never pays for the SDK.
 *
 * - The store makes each request once; the retry wrapper (retrying-store.ts) retries
 *   transient failures within one bounded budget. The SDK's own retries are off so the
 *   total time stays bounded. A put runs each of its requests through the wrapper's
 *   PutOptions.retryRequest, so a failed part of a multipart upload is retried alone.
 * - Bodies up to one part go in a single PutObject; larger streams use multipart upload,
 *   holding two parts in memory: one uploads while the next is read. Parts and single
 *   PUTs carry Content-MD5 when the SDK's own checksums are off (when_required), so the
 *   server verifies every byte.
 * - A failed multipart upload is aborted, so no partial object is ever visible.
 * - Conditional writes (If-None-Match: *) are sent, but whether the server honours them
 *   is not known without a probe (capabilities.atomicIfAbsent is "unknown" until
 *   learnCapabilities): ifAbsent checks with a HEAD first while that is so.
 *
 * The wal-push / wal-fetch hot path uses S3HttpStore (s3-http-store.ts) instead, which
 * leaves to this store what needs the SDK: multipart uploads, listings, and credentials
 * other than static keys.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
  type StorageClass,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NotFoundError, StorageError } from "../errors.js";
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
import { rangedAnswer } from "./s3-http-store.js";
import type { S3Settings } from "./s3-settings.js";
import { CaFile, trustingAgent } from "./s3-tls.js";
import type { AwsCredentials } from "./sigv4.js";
import { chunked, toReadable } from "./streams.js";

// The SDK warns once per process that its 2027 releases need Node 22. Under archive_command
// that would be one warning in the server log per WAL segment; pgha's engines say what it needs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export class S3Store implements Store.ObjectStore {
  readonly url: string;
  capabilities: Store.StoreCapabilities = {
    atomicIfAbsent: "unknown",
    atomicReplace: "unknown",
    durableWhenVisible: true,
  };
  private readonly client: S3Client;
  private readonly sendMd5: boolean;

  /** `credentials`: use these instead of the SDK's default chain (S3HttpStore found them). */
  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly settings: S3Settings,
    credentials?: AwsCredentials,
  ) {
    this.url = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
    const checksums = settings.checksums === "when_required" ? "WHEN_REQUIRED" : "WHEN_SUPPORTED";
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(credentials ? { credentials } : {}),
      forcePathStyle: settings.forcePathStyle,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: 5000,
        requestTimeout: 60_000,
        // The SDK's TLS context is built once per process: the file is added to the roots.
        ...(settings.caFile
          ? { httpsAgent: trustingAgent(new CaFile(settings.caFile), "file-and-roots") }
          : {}),
      },
    });
    this.sendMd5 = settings.checksums === "when_required";
  }

  private fullKey(key: string): string {
    assertValidKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** One request; its errors classified. Retried through `retry` when a put passes one. */
  private async send<T>(
    what: string,
    call: () => Promise<T>,
    retry?: Store.RequestRetry,
  ): Promise<T> {
    const once = async () => {
      try {
        return await call();
      } catch (error) {
        throw classify(error, what, this.url);
      }
    };
    return retry ? retry(what, once) : once();
  }

  head(key: string): Promise<Store.ObjectInfo | undefined> {
    return this.headObject(key, undefined);
  }

  private async headObject(key: string, retry: Store.RequestRetry | undefined) {
    const Key = this.fullKey(key);
    try {
      const out = await this.send(
        `HEAD ${this.url}/${key}`,
        () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key })),
        retry,
      );
      return { key, size: out.ContentLength ?? 0, metadata: out.Metadata ?? {} };
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  async get(key: string): Promise<{ info: Store.ObjectInfo; body: Readable }> {
    const Key = this.fullKey(key);
    const out = await this.send(`GET ${this.url}/${key}`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    );
    const body = out.Body as Readable | undefined;
    if (!body)
      throw new StorageError(`GET ${this.url}/${key} returned no body`, { transient: true });
    return { info: { key, size: out.ContentLength ?? 0, metadata: out.Metadata ?? {} }, body };
  }

  async getFrom(
    key: string,
    from: number,
  ): Promise<{ info: Store.ObjectInfo; body: Readable; start: number }> {
    const Key = this.fullKey(key);
    const out = await this.send(`GET ${this.url}/${key} from byte ${from}`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${from}-` })),
    );
    const body = out.Body as Readable | undefined;
    if (!body)
      throw new StorageError(`GET ${this.url}/${key} returned no body`, { transient: true });
    const answer = rangedAnswer(key, out.$metadata.httpStatusCode, {
      contentRange: out.ContentRange,
      contentLength: out.ContentLength ?? 0,
      metadata: out.Metadata ?? {},
      body,
    });
    return answer ?? { ...(await this.get(key)), start: 0 };
  }

  async put(
    key: string,
    body: Store.PutBody,
    options: Store.PutOptions = {},
  ): Promise<Store.StoredObject> {
    const Key = this.fullKey(key);
    const metadata = { ...(options.metadata ?? {}) };
    assertValidMetadata(metadata);
    const retry = options.retryRequest;
    // If-None-Match alone is enough only where the server is known to honour it.
    await refuseIfPresent(key, options, this.capabilities, () => this.headObject(key, retry));
    const common = {
      Bucket: this.bucket,
      Key,
      Metadata: metadata,
      ...(this.settings.storageClass
        ? { StorageClass: this.settings.storageClass as StorageClass }
        : {}),
      ...(this.settings.sse
        ? { ServerSideEncryption: this.settings.sse as ServerSideEncryption }
        : {}),
      ...(this.settings.sseKmsKeyId ? { SSEKMSKeyId: this.settings.sseKmsKeyId } : {}),
    };
    const ifNoneMatch = options.ifAbsent ? { IfNoneMatch: "*" } : {};
    const partSize = this.settings.partSize;

    const parts = chunked(toReadable(body), partSize);
    const first = await parts.next();
    const firstPart = first.done ? Buffer.alloc(0) : first.value;
    const second = firstPart.length === partSize ? await parts.next() : { done: true as const };

    if (second.done) {
      const md5 = createHash("md5").update(firstPart).digest();
      const out = await this.send(
        `PUT ${this.url}/${key}`,
        () =>
          this.client.send(
            new PutObjectCommand({
              ...common,
              ...ifNoneMatch,
              Body: firstPart,
              ContentLength: firstPart.length,
              ...(this.sendMd5 ? { ContentMD5: md5.toString("base64") } : {}),
            }),
          ),
        retry,
      );
      const verified = etagIsMd5(out.ETag, md5, out.ServerSideEncryption, out.SSECustomerAlgorithm);
      return { key, size: firstPart.length, metadata, verified };
    }

    const created = await this.send(
      `create multipart upload ${this.url}/${key}`,
      () => this.client.send(new CreateMultipartUploadCommand(common)),
      retry,
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw new StorageError("multipart upload without an id", { transient: false });
    try {
      const done: { ETag: string; PartNumber: number }[] = [];
      let size = 0;
      const upload = async (part: Buffer, PartNumber: number) => {
        const out = await this.send(
          `upload part ${PartNumber} of ${this.url}/${key}`,
          () =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
                Key,
                UploadId,
                PartNumber,
                Body: part,
                ContentLength: part.length,
                ...this.md5(part),
              }),
            ),
          retry,
        );
        done.push({ ETag: out.ETag ?? "", PartNumber });
        size += part.length;
      };
      // One part uploads while the next is read from the body, so the body's producer is
      // not stopped for the length of every upload: two parts in memory, not one.
      let uploading: Promise<void> = Promise.resolve();
      let partsStarted = 0;
      const next = async (part: Buffer) => {
        await uploading;
        uploading = upload(part, ++partsStarted);
        uploading.catch(() => undefined); // awaited by the next part, or below
      };
      try {
        await next(firstPart);
        await next(second.value);
        for await (const part of parts) await next(part);
      } finally {
        // Nothing is left in flight when the upload completes or is aborted.
        await uploading.catch(() => undefined);
      }
      await uploading;
      await this.send(
        `complete multipart upload ${this.url}/${key}`,
        () =>
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key,
              UploadId,
              ...ifNoneMatch,
              MultipartUpload: { Parts: done },
            }),
          ),
        retry,
      );
      return { key, size, metadata };
    } catch (error) {
      // Retried like any request; parts left by a killed process need a bucket lifecycle
      // rule (AbortIncompleteMultipartUpload, see README).
      await this.send(
        `abort multipart upload ${this.url}/${key}`,
        () =>
          this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })),
        retry,
      ).catch(() => undefined);
      throw error;
    }
  }

  private md5(data: Buffer): { ContentMD5?: string } {
    return this.sendMd5 ? { ContentMD5: createHash("md5").update(data).digest("base64") } : {};
  }

  async *list(prefix: string, options: Store.ListOptions = {}): AsyncIterable<Store.ListEntry> {
    const base = this.prefix ? `${this.prefix}/` : "";
    if (options.after !== undefined) assertValidKey(options.after);
    // StartAfter applies to the first page only; the continuation token carries it on.
    const startAfter = options.after === undefined ? {} : { StartAfter: base + options.after };
    let ContinuationToken: string | undefined;
    do {
      const token = ContinuationToken;
      const out = await this.send(`LIST ${this.url}/${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + prefix,
            ...(token ? { ContinuationToken: token } : startAfter),
          }),
        ),
      );
      for (const item of out.Contents ?? []) {
        if (!item.Key?.startsWith(base)) continue;
        yield {
          key: item.Key.slice(base.length),
          size: item.Size ?? 0,
          lastModified: item.LastModified,
        };
      }
      ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async durable(key: string): Promise<void> {
    this.fullKey(key);
  }

  async learnCapabilities(
    probeKey: string,
    known?: Partial<Store.StoreCapabilities>,
  ): Promise<Partial<Store.StoreCapabilities>> {
    const atomicIfAbsent = await learnAtomicIfAbsent(this.capabilities, known, () =>
      this.send(`probe PUT ${this.url}/${probeKey}`, () =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.fullKey(probeKey),
            Body: PROBE_BODY,
            IfNoneMatch: "*",
            ...this.md5(PROBE_BODY),
          }),
        ),
      ),
    );
    if (atomicIfAbsent === undefined) return {};
    this.capabilities = { ...this.capabilities, atomicIfAbsent };
    return { atomicIfAbsent };
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    await this.send(`DELETE ${this.url}/${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })),
    );
  }
}
