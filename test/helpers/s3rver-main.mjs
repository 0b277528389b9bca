// Runs s3rver in its own process (started by s3-server.ts). Its paginated listing needs
// --openssl-legacy-provider, which is why it is not run inside the test workers.
// Arguments: DIRECTORY BUCKET [KEY_FILE CERT_FILE] (with both files it speaks https only).
// With S3RVER_REQUEST_LOG=FILE it appends "METHOD URL" for every request to FILE.
// Prints {"port": N} on stdout once listening; stops on SIGTERM.
//
// s3rver does not check Signature Version 4 (it accepts any signature), so this process
// does, with the AWS SDK's own signer, for every request with a SigV4 Authorization
// header: a wrong signature is answered 403 SignatureDoesNotMatch, as S3 would. That is
// what tests pgha's own signing (src/storage/sigv4.ts) request by request.
import { createHash, createHmac } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import S3rver from "s3rver";

const [directory, bucket, keyFile, certFile] = process.argv.slice(2);
const requestLog = process.env.S3RVER_REQUEST_LOG;
const tls = keyFile && certFile ? { key: readFileSync(keyFile), cert: readFileSync(certFile) } : {};
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
  ...tls,
});

// The SDK's signer, from where the SDK finds it.
const require = createRequire(import.meta.url);
const { SignatureV4 } = createRequire(require.resolve("@aws-sdk/client-s3"))(
  "@smithy/signature-v4",
);
/** s3rver's default account. */
const SECRETS = { S3RVER: "S3RVER" };

class Sha256 {
  constructor(secret) {
    this.hash = secret ? createHmac("sha256", secret) : createHash("sha256");
  }
  update(data) {
    this.hash.update(data);
  }
  async digest() {
    return this.hash.digest();
  }
}

/** The signature the SDK computes for this request, from the headers it says it signed. */
async function expectedSignature(req, credential, signedHeaders) {
  const [accessKeyId, , region, service] = credential.split("/");
  const secretAccessKey = SECRETS[accessKeyId];
  if (!secretAccessKey) return undefined;
  const [path, search = ""] = (req.url ?? "/").split("?");
  const query = {};
  for (const part of search.split("&").filter(Boolean)) {
    const eq = part.indexOf("=");
    const name = decodeURIComponent(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? "" : decodeURIComponent(part.slice(eq + 1));
    query[name] = name in query ? [].concat(query[name], value) : value;
  }
  const headers = {};
  for (const name of signedHeaders) headers[name] = req.headers[name] ?? "";
  const amzDate = req.headers["x-amz-date"] ?? "";
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region,
    service,
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: req.method, protocol: "http:", hostname: "", path, query, headers },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  return /Signature=([0-9a-f]+)/.exec(signed.headers.authorization ?? "")?.[1];
}

server.middleware.unshift(async (ctx, next) => {
  if (requestLog) appendFileSync(requestLog, `${ctx.req.method} ${ctx.req.url}\n`);
  const auth = ctx.req.headers.authorization ?? "";
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/.exec(
      auth,
    );
  if (match) {
    const [, credential, signed, signature] = match;
    const expected = await expectedSignature(ctx.req, credential, signed.split(";"));
    if (expected !== undefined && expected !== signature) {
      ctx.status = 403;
      ctx.type = "application/xml";
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided (test server: expected ${expected}).</Message></Error>`;
      return;
    }
  }
  await next();
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
