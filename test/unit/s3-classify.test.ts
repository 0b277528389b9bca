/** S3 error classification: what is "not found", what is retried, what fails at once with a hint. */
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, NotFoundError, StorageError } from "../../src/errors.js";
import { classify } from "../../src/storage/s3-errors.js";

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

  it.each([
    ["AccessDenied", 403],
    ["InvalidAccessKeyId", 403],
    ["SignatureDoesNotMatch", 403],
    ["Forbidden", 403],
  ])("%s (HTTP %s) is access denied, not retried", (name, status) => {
    const error = classify(sdkError(name, status), what, url) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error.transient).toBe(false);
    expect(error.message).toMatch(/access denied/);
    expect(error.hint).toMatch(/s3:ListBucket/);
  });

  it("a 412 is the conditional write's 'already exists'", () => {
    expect(classify(sdkError("PreconditionFailed", 412), what, url)).toBeInstanceOf(
      AlreadyExistsError,
    );
  });

  it.each([
    ["BadDigest", 400],
    ["XAmzContentSHA256Mismatch", 400],
    ["InternalError", 500],
    ["ServiceUnavailable", 503],
    ["SlowDown", 503],
    ["TooManyRequestsException", 429],
    ["RequestTimeout", 408],
  ])("%s (HTTP %s) is transient: retried", (name, status) => {
    const error = classify(sdkError(name, status), what, url) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error.transient).toBe(true);
  });

  it("network errors are transient, credentials that cannot be loaded are not", () => {
    const reset = classify(
      Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
      what,
      url,
    );
    expect((reset as StorageError).transient).toBe(true);
    const refused = classify(
      Object.assign(new Error("connect failed"), { cause: { code: "ECONNREFUSED" } }),
      what,
      url,
    );
    expect((refused as StorageError).transient).toBe(true);
    const noCredentials = classify(
      sdkError("CredentialsProviderError", undefined, { message: "Could not load credentials" }),
      what,
      url,
    ) as StorageError;
    expect(noCredentials.transient).toBe(false);
    expect(noCredentials.message).toMatch(/access denied/);
    const slowImds = classify(
      sdkError("CredentialsProviderError", undefined, { message: "connection timed out" }),
      what,
      url,
    ) as StorageError;
    expect(slowImds.transient).toBe(true);
  });

  it("any other 4xx fails at once with a hint about the S3 settings", () => {
    const error = classify(sdkError("InvalidArgument", 400), what, url) as StorageError;
    expect(error.transient).toBe(false);
    expect(error.message).toContain("HTTP 400");
    expect(error.hint).toMatch(/--s3-endpoint/);
  });
});
