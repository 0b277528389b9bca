/**
 * AWS Signature Version 4, header form, with node:crypto: how S3HttpStore signs its
 * requests without loading the AWS SDK. Pure functions. Checked against AWS's published
 * examples and against the SDK's own signer (test/unit/sigv4.test.ts), and request by
 * request by the test S3 server (test/helpers/s3rver-main.mjs verifies every signature).
 */
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface SigningScope {
  readonly credentials: AwsCredentials;
  readonly region: string;
  readonly service: string;
  /** The request time as x-amz-date writes it: 20130524T000000Z. */
  readonly amzDate: string;
}

export interface RequestToSign {
  readonly method: string;
  /** The path exactly as sent, already URI-encoded (uriEncodePath); S3 signs it as it is. */
  readonly path: string;
  /** Query parameters, not encoded. */
  readonly query: readonly (readonly [string, string])[];
  /** The headers to sign, host and x-amz-date included; names in any case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex sha256 of the body, or UNSIGNED-PAYLOAD. */
  readonly payloadHash: string;
}

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** 2013-05-24T00:00:00.000Z -> 20130524T000000Z */
export function toAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]|\.\d{3}/g, "");
}

/**
 * RFC 3986 percent-encoding of UTF-8 bytes as SigV4 wants it: everything but A-Z a-z 0-9
 * - . _ ~ is encoded (upper-case hex); "/" too unless `keepSlash`.
 */
export function uriEncode(text: string, keepSlash = false): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The canonical request of SigV4, and the signed-header list it names. */
export function canonicalRequest(request: RequestToSign): {
  text: string;
  signedHeaders: string;
} {
  const query = request.query
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headers = Object.entries(request.headers)
    .map(([name, value]) => [name.toLowerCase(), value.trim().replace(/\s+/g, " ")] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = headers.map(([name]) => name).join(";");
  const text = [
    request.method,
    request.path,
    query,
    ...headers.map(([name, value]) => `${name}:${value}`),
    "",
    signedHeaders,
    request.payloadHash,
  ].join("\n");
  return { text, signedHeaders };
}

/** The Authorization header value for a request. */
export function authorization(request: RequestToSign, scope: SigningScope): string {
  const { text, signedHeaders } = canonicalRequest(request);
  const day = scope.amzDate.slice(0, 8);
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    scope.amzDate,
    credentialScope,
    createHash("sha256").update(text).digest("hex"),
  ].join("\n");
  const key = signingKey(scope.credentials.secretAccessKey, day, scope.region, scope.service);
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  return `AWS4-HMAC-SHA256 Credential=${scope.credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request") */
export function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  const hmac = (key: string | Buffer, data: string) =>
    createHmac("sha256", key).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), "aws4_request");
}
