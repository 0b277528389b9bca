/** S3 error classification: what is "not found", what is retried, what fails at once with a hint. */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, NotFoundError, StorageError } from "../../src/errors.js";
import { classify } from "../../src/storage/s3-errors.js";
import { contentRange, rangedAnswer } from "../../src/storage/s3-http-store.js";

const sdkError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    ...extra,
  });

const what = "GET s3://b/p/k";
const url = "s3://b/p";

describe("S3 error classification", () => {
  it.each([
    ["NoSuchKey", 404],
    ["NotFound", 404],
    ["UnknownError", 404],
  ])("%s (HTTP %s) is not found", (name, status) => {
    expect(classify(sdkError(name, status), what, url)).toBeInstanceOf(NotFoundError);
  });

  it("a missing bucket is a storage failure with a hint, not 'not found'", () => {
    const error = classify(sdkError("NoSuchBucket", 404), what, url);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(false);
    expect((error as StorageError).hint).toMatch(/create the bucket of s3:\/\/b\/p/);
  });

  it("a clock S3 refuses is named, with a hint about the clock, not about credentials", () => {
    const error = classify(sdkError("RequestTimeTooSkewed", 403), what, url);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).transient).toBe(false);
    expect((error as StorageError).message).toMatch(/this host's clock is off/);
    expect((error as StorageError).hint).toMatch(/chrony/);
    expect((error as StorageError).hint).not.toMatch(/credentials/);
  });

  it("a bodiless 403 (a HEAD's) is the clock when the response's Date is far from ours", () => {
    const at = (ms: number) => ({ $response: { headers: { date: new Date(ms).toUTCString() } } });
    const skewed = classify(sdkError("Forbidden", 403, at(Date.now() - 40 * 60_000)), what, url);
    expect((skewed as StorageError).message).toMatch(/clock is off .*-40 minutes/);
    expect((skewed as StorageError).hint).toMatch(/chrony/);
    const denied = classify(sdkError("Forbidden", 403, at(Date.now() - 60_000)), what, url);
    expect((denied as StorageError).message).toMatch(/access denied/);
  });

  it("a 412 is the conditional write's 'already exists'", () => {
    expect(classify(sdkError("PreconditionFailed", 412), what, url)).toBeInstanceOf(
      AlreadyExistsError,
    );
  });

  /** Denied requests fail at once, with the policy hint; transient ones are retried. */
  it.each([
    ["AccessDenied", 403, false],
    ["InvalidAccessKeyId", 403, false],
    ["SignatureDoesNotMatch", 403, false],
    ["Forbidden", 403, false],
    ["BadDigest", 400, true],
    ["XAmzContentSHA256Mismatch", 400, true],
    ["InternalError", 500, true],
    ["ServiceUnavailable", 503, true],
    ["SlowDown", 503, true],
    ["TooManyRequestsException", 429, true],
    ["RequestTimeout", 408, true],
  ])("%s (HTTP %s): retried %s", (name, status, transient) => {
    const error = classify(sdkError(name, status), what, url) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error.transient).toBe(transient);
    if (!transient) {
      expect(error.message).toMatch(/access denied/);
      expect(error.hint).toMatch(/s3:ListBucket/);
    }
  });

  const credentials = (message: string) =>
    sdkError("CredentialsProviderError", undefined, { message });
  it.each([
    ["a reset", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), true],
    [
      "a refused connection",
      Object.assign(new Error("x"), { cause: { code: "ECONNREFUSED" } }),
      true,
    ],
    ["credentials that cannot be loaded", credentials("Could not load credentials"), false],
    ["an instance role that answers slowly", credentials("connection timed out"), true],
  ])("%s: retried %s", (_what, error, transient) => {
    const classified = classify(error, what, url) as StorageError;
    expect(classified).toBeInstanceOf(StorageError);
    expect(classified.transient).toBe(transient);
    if (!transient) expect(classified.message).toMatch(/access denied/);
  });

  it("any other 4xx fails at once with a hint about the S3 settings", () => {
    const error = classify(sdkError("InvalidArgument", 400), what, url) as StorageError;
    expect(error.transient).toBe(false);
    expect(error.message).toContain("HTTP 400");
    expect(error.hint).toMatch(/--s3-endpoint/);
  });
});

describe("Content-Range", () => {
  it("gives a range's first byte and the object's size, and nothing it cannot read", () => {
    expect(contentRange("bytes 5-9/10")).toEqual({ start: 5, size: 10 });
    expect(contentRange("bytes 0-0/1")).toEqual({ start: 0, size: 1 });
    for (const value of ["bytes 5-9/*", "bytes */10", "5-9/10", "", undefined])
      expect(contentRange(value)).toBeUndefined();
  });

  it("makes getFrom's result of an answer: a range, a whole body, or none (GET it whole)", () => {
    const answer = (contentRange: string | undefined) => ({
      contentRange,
      contentLength: 5,
      metadata: { "pgha-a": "1" },
      body: Readable.from([Buffer.from("56789")]),
    });
    expect(rangedAnswer("k", 206, answer("bytes 5-9/10"))).toMatchObject({
      info: { key: "k", size: 10, metadata: { "pgha-a": "1" } },
      start: 5,
    });
    expect(rangedAnswer("k", 200, answer(undefined))).toMatchObject({
      info: { size: 5 },
      start: 0,
    });
    const unreadable = answer("bytes 5-9/*");
    expect(rangedAnswer("k", 206, unreadable)).toBeUndefined();
    expect(unreadable.body.destroyed).toBe(true);
  });
});
