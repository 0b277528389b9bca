/**
 * The AWS SDK's view of the S3 test server, for what a test or a benchmark checks or
 * changes behind pgha's back.
 */
import { Agent } from "node:https";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { S3TestServer } from "./s3-server.js";

/** `ca`: the PEM certificate a TLS server's chains to, when it is not a public one. */
export function testS3Client(server: S3TestServer, ca?: Buffer): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    // s3rver knows none of the SDK's default checksums.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...(ca ? { requestHandler: { httpsAgent: new Agent({ ca, keepAlive: true }) } } : {}),
  });
}

/** Every object under `prefix/`, page by page. */
export async function* listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<{ key: string; size: number }> {
  let token: string | undefined;
  do {
    const out = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: `${prefix}/`,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const item of out.Contents ?? []) {
      if (item.Key) yield { key: item.Key, size: item.Size ?? 0 };
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
}
