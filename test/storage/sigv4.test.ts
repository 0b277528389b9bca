/**
 * pgha's SigV4 signer (src/storage/sigv4.ts) against AWS's published examples, and against
 * the AWS SDK's own signer on generated requests. (The test S3 server checks the
 * signature of every request the integration tests make as well.)
 */
import { createHash, createHmac } from "node:crypto";
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  authorization,
  canonicalRequest,
  EMPTY_SHA256,
  signingKey,
  toAmzDate,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "../../src/storage/sigv4.js";

const signatureOf = (auth: string) => /Signature=([0-9a-f]{64})$/.exec(auth)?.[1];

describe("SigV4: AWS's S3 examples (Signature Calculations for the Authorization Header)", () => {
  // docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
  const scope = {
    credentials: {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    },
    region: "us-east-1",
    service: "s3",
    amzDate: "20130524T000000Z",
  };
  const host = "examplebucket.s3.amazonaws.com";
  const base = { host, "x-amz-date": "20130524T000000Z" };

  it("GET Object with a Range header", () => {
    const auth = authorization(
      {
        method: "GET",
        path: "/test.txt",
        query: [],
        headers: { ...base, Range: "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256 },
        payloadHash: EMPTY_SHA256,
      },
      scope,
    );
    expect(auth).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("PUT Object: a '$' in the key, a storage class, a signed payload", () => {
    const payloadHash = createHash("sha256").update("Welcome to Amazon S3.").digest("hex");
    expect(payloadHash).toBe("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const path = `/${uriEncode("test$file.text", true)}`;
    expect(path).toBe("/test%24file.text");
    const auth = authorization(
      {
        method: "PUT",
        path,
        query: [],
        headers: {
          ...base,
          Date: "Fri, 24 May 2013 00:00:00 GMT",
          "x-amz-storage-class": "REDUCED_REDUNDANCY",
          "x-amz-content-sha256": payloadHash,
        },
        payloadHash,
      },
      scope,
    );
    expect(auth).toContain(
      "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,",
    );
    expect(signatureOf(auth)).toBe(
      "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
  });

  it.each([
    [
      "GET Bucket Lifecycle: a query parameter without a value",
      [["lifecycle", ""]] as const,
      "lifecycle=",
      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    ],
    [
      "GET Bucket (List Objects): query parameters sorted by name",
      [
        ["prefix", "J"],
        ["max-keys", "2"],
      ] as const,
      "max-keys=2&prefix=J",
      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ],
  ] as const)("%s", (_, query, canonicalQuery, signature) => {
    const request = {
      method: "GET",
      path: "/",
      query,
      headers: { ...base, "x-amz-content-sha256": EMPTY_SHA256 },
      payloadHash: EMPTY_SHA256,
    };
    expect(canonicalRequest(request).text.split("\n")[2]).toBe(canonicalQuery);
    expect(signatureOf(authorization(request, scope))).toBe(signature);
  });
});

describe("SigV4: AWS's general example (IAM ListUsers, 'Create a signed AWS API request')", () => {
  const request = {
    method: "GET",
    path: "/",
    query: [
      ["Action", "ListUsers"],
      ["Version", "2010-05-08"],
    ] as const,
    headers: {
      Host: "iam.amazonaws.com",
      "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
      "X-Amz-Date": "20150830T123600Z",
    },
    payloadHash: EMPTY_SHA256,
  };
  const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

  it("hashes the canonical request and signs it as published", () => {
    expect(createHash("sha256").update(canonicalRequest(request).text).digest("hex")).toBe(
      "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
    );
    expect(
      authorization(request, {
        credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: secret },
        region: "us-east-1",
        service: "iam",
        amzDate: "20150830T123600Z",
      }),
    ).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    );
  });

  it("derives the signing key of the example", () => {
    expect(signingKey(secret, "20150830", "us-east-1", "iam").toString("hex")).toBe(
      "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9",
    );
  });
});

describe("SigV4 helpers", () => {
  it("encodes like RFC 3986 on UTF-8 bytes, '/' only where asked", () => {
    expect(uriEncode("a b+c*d~e_f.g-h/i")).toBe("a%20b%2Bc%2Ad~e_f.g-h%2Fi");
    expect(uriEncode("a b/ü!'()", true)).toBe("a%20b/%C3%BC%21%27%28%29");
  });

  it("writes x-amz-date from a Date", () => {
    expect(toAmzDate(new Date("2013-05-24T00:00:00.123Z"))).toBe("20130524T000000Z");
  });
});

// The SDK's signer (a dependency of @aws-sdk/client-s3), configured as its S3 client is.
const sdkRequire = createRequire(createRequire(import.meta.url).resolve("@aws-sdk/client-s3"));
const { SignatureV4 } = sdkRequire("@smithy/signature-v4") as {
  SignatureV4: new (
    options: Record<string, unknown>,
  ) => {
    sign(
      request: Record<string, unknown>,
      options: Record<string, unknown>,
    ): Promise<{ headers: Record<string, string> }>;
  };
};
class Sha256 {
  private readonly hash;
  constructor(secret?: Uint8Array | string) {
    this.hash = secret ? createHmac("sha256", secret) : createHash("sha256");
  }
  update(data: Uint8Array | string) {
    this.hash.update(data);
  }
  async digest() {
    return this.hash.digest();
  }
}

describe("SigV4: the same signatures as the AWS SDK's signer", () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9._ ~!$&'()*+,;=:@ü-]{1,12}$/);
  const request = fc.record({
    method: fc.constantFrom("GET", "HEAD", "PUT", "DELETE"),
    keys: fc.array(segment, { minLength: 1, maxLength: 4 }),
    query: fc.array(fc.tuple(fc.stringMatching(/^[a-z-]{1,8}$/), fc.string({ maxLength: 6 })), {
      maxLength: 3,
    }),
    metadata: fc.dictionary(
      fc.stringMatching(/^[a-z0-9-]{1,10}$/),
      fc.stringMatching(/^[ -~]{0,20}$/),
      { maxKeys: 3 },
    ),
    payload: fc.oneof(fc.constant(UNSIGNED_PAYLOAD), fc.constant(EMPTY_SHA256)),
    token: fc.option(fc.stringMatching(/^[A-Za-z0-9/+=]{8,40}$/), { nil: undefined }),
    seconds: fc.integer({ min: 1_500_000_000, max: 2_000_000_000 }),
  });

  it("for generated requests", async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const names = r.query.map(([name]) => name);
        fc.pre(new Set(names).size === names.length);
        const date = new Date(r.seconds * 1000);
        const amzDate = toAmzDate(date);
        const credentials = {
          accessKeyId: "AKIDEXAMPLE",
          secretAccessKey: "secret/key+value",
          ...(r.token ? { sessionToken: r.token } : {}),
        };
        const path = `/bucket/${uriEncode(r.keys.join("/"), true)}`;
        const headers: Record<string, string> = {
          host: "127.0.0.1:9000",
          "x-amz-date": amzDate,
          "x-amz-content-sha256": r.payload,
          ...(r.token ? { "x-amz-security-token": r.token } : {}),
        };
        for (const [name, value] of Object.entries(r.metadata))
          headers[`x-amz-meta-${name}`] = value;
        const ours = authorization(
          { method: r.method, path, query: r.query, headers, payloadHash: r.payload },
          { credentials, region: "eu-west-1", service: "s3", amzDate },
        );
        const signer = new SignatureV4({
          credentials,
          region: "eu-west-1",
          service: "s3",
          sha256: Sha256,
          uriEscapePath: false,
          applyChecksum: false,
        });
        const theirs = await signer.sign(
          {
            method: r.method,
            protocol: "http:",
            hostname: "127.0.0.1",
            port: 9000,
            path,
            query: Object.fromEntries(r.query),
            headers: { ...headers },
          },
          { signingDate: date },
        );
        expect(signatureOf(ours)).toBe(signatureOf(theirs.headers.authorization ?? ""));
      }),
      { numRuns: 300 },
    );
  });
});
