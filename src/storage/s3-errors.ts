/**
 * S3 failures in pgha's terms, for both S3 clients (the SDK's S3Store and the hot path's
 * S3HttpStore): "not found", "already exists", and StorageError, transient (retried by the
 * retry wrapper) or not (with a hint). Kept apart from s3.ts so that the hot path does not
 * load the SDK to classify an error.
 */
import { AlreadyExistsError, NotFoundError, PghaError, StorageError } from "../errors.js";

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
]);
/** OpenSSL's verification failures, as Node reports them in error.code. */
const UNTRUSTED_CERTIFICATE =
  /^(UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_UNTRUSTED|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID)$/;

const TRANSIENT_NAMES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "InternalError",
  "ServiceUnavailable",
  "ConditionalRequestConflict",
]);

/** How far from its own time S3 accepts a request's signature time. */
const SKEW_REFUSED_MS = 15 * 60_000;

/** The server's time (an HTTP Date header) minus this host's, or undefined. */
function clockSkewMs(date: unknown): number | undefined {
  if (typeof date !== "string") return undefined;
  const server = Date.parse(date);
  return Number.isNaN(server) ? undefined : server - Date.now();
}

/**
 * Maps an SDK or network error to NotFound / AlreadyExists / StorageError(transient?).
 * S3HttpStore hands in its HTTP errors in the SDK's shape (name = S3 error code,
 * $metadata.httpStatusCode). pgha's own errors (an unreadable --s3-ca-file) pass through.
 */
export function classify(error: unknown, what: string, url: string): Error {
  if (error instanceof PghaError) return error;
  const e = error as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | string[] | undefined> };
    cause?: { code?: string };
  };
  const status = e.$metadata?.httpStatusCode;
  let name = e.name ?? "";
  let message = e.message || name || String(error);
  // A HEAD's 403 has no body to say why: the response's Date tells a refused signature
  // time from a denied request.
  const skew = clockSkewMs(e.$response?.headers?.date);
  if (
    status === 403 &&
    name !== "RequestTimeTooSkewed" &&
    skew !== undefined &&
    Math.abs(skew) > SKEW_REFUSED_MS
  ) {
    name = "RequestTimeTooSkewed";
    message = `the storage's time is ${Math.round(skew / 60_000)} minutes from this host's`;
  }
  if (name === "NoSuchKey" || name === "NotFound" || (status === 404 && name !== "NoSuchBucket")) {
    return new NotFoundError(`${what}: not found`);
  }
  if (status === 412 || name === "PreconditionFailed") {
    return new AlreadyExistsError(what);
  }
  if (name === "NoSuchBucket") {
    return new StorageError(`${what}: the bucket does not exist`, {
      transient: false,
      hint: `create the bucket of ${url} first, or fix --repo`,
    });
  }
  const code = e.code ?? e.cause?.code;
  const networkCause = code !== undefined && TRANSIENT_CODES.has(code);
  if (code !== undefined && UNTRUSTED_CERTIFICATE.test(code)) {
    return new StorageError(
      `${what}: the endpoint's TLS certificate is not trusted (${code}): ${message}`,
      {
        transient: false,
        cause: error,
        hint: "check the endpoint's certificate (its name and dates); if a private CA issued it, give that CA's certificate with --s3-ca-file (PGHA_S3_CA_FILE)",
      },
    );
  }
  if (name === "BadDigest" || name === "XAmzContentSHA256Mismatch") {
    // The body was damaged in transit; every body pgha sends is a buffer, so resend it.
    return new StorageError(`${what}: ${name}: ${message}`, { transient: true, cause: error });
  }
  if (name === "CredentialsProviderError" && (networkCause || /timed? ?out|ECONN/i.test(message))) {
    return new StorageError(`${what}: credentials not available yet: ${message}`, {
      transient: true,
      cause: error,
    });
  }
  if (name === "RequestTimeTooSkewed") {
    // A 403 like a denied request, but no credential or policy is wrong: S3 refuses a
    // request signed more than 15 minutes away from its own time.
    return new StorageError(`${what}: refused: this host's clock is off (${message})`, {
      transient: false,
      cause: error,
      hint: "set this host's clock right (chrony, ntpd or systemd-timesyncd): S3 refuses requests signed more than 15 minutes away from its own time",
    });
  }
  if (
    name === "CredentialsProviderError" ||
    name === "InvalidAccessKeyId" ||
    name === "SignatureDoesNotMatch" ||
    name === "AccessDenied" ||
    status === 403
  ) {
    return new StorageError(`${what}: access denied (${name || status}): ${message}`, {
      transient: false,
      cause: error,
      hint: "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role) and the policy: pgha needs s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload and s3:ListBucket (without ListBucket S3 answers 403 instead of 404 for a missing key)",
    });
  }
  const transient =
    (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
    TRANSIENT_NAMES.has(name) ||
    networkCause ||
    /socket hang up|ECONNRESET|ECONNREFUSED|timed? ?out/i.test(message);
  return new StorageError(
    `${what}: ${code ?? name}${status ? ` (HTTP ${status})` : ""}: ${message}`,
    {
      transient,
      cause: error,
      ...(transient
        ? {}
        : {
            hint: "check the S3 settings (--s3-endpoint, --s3-region, --s3-checksums) and the bucket",
          }),
    },
  );
}
