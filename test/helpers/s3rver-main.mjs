// Runs s3rver in its own process (started by s3-server.ts). Its paginated listing needs
// --openssl-legacy-provider, which is why it is not run inside the test workers.
// Arguments: DIRECTORY BUCKET [KEY_FILE CERT_FILE] (with both files it speaks https only).
// Prints {"port": N} on stdout once listening; stops on SIGTERM.
import { readFileSync } from "node:fs";
import S3rver from "s3rver";

const [directory, bucket, keyFile, certFile] = process.argv.slice(2);
const tls = keyFile && certFile ? { key: readFileSync(keyFile), cert: readFileSync(certFile) } : {};
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
  ...tls,
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
