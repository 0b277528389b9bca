/**
 * A private CA made at test time with the openssl CLI, and a server certificate it issued
 * for 127.0.0.1: what an S3 server behind an internal CA presents. (And the self-signed
 * certificate the peer benchmark's server presents.)
 */
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface TestCa {
  /** The CA certificate (PEM): what --s3-ca-file names. */
  caFile: string;
  /** The server's key and certificate (PEM), issued by the CA for IP 127.0.0.1. */
  keyFile: string;
  certFile: string;
}

const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });

/**
 * A new RSA key and a certificate for `subject` signed with it, valid for two days, with
 * more X.509 extensions ("name=value", as openssl's -addext takes them).
 */
export function makeSelfSigned(
  files: { keyFile: string; certFile: string },
  subject: string,
  extensions: string[] = [],
): void {
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    subject,
    ...extensions.flatMap((extension) => ["-addext", extension]),
    "-keyout",
    files.keyFile,
    "-out",
    files.certFile,
  );
}

export async function makeTestCa(dir: string): Promise<TestCa> {
  const at = (name: string) => join(dir, name);
  makeSelfSigned({ keyFile: at("ca.key"), certFile: at("ca.pem") }, "/CN=pgha test CA");
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
  );
  await writeFile(at("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  openssl(
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    at("server.ext"),
    "-out",
    at("server.pem"),
  );
  return { caFile: at("ca.pem"), keyFile: at("server.key"), certFile: at("server.pem") };
}
