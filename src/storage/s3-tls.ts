/**
 * --s3-ca-file: CA certificates (PEM, one or more) that the S3 endpoint's certificate may
 * chain to, in addition to Node's bundled roots: MinIO or Ceph behind an internal CA. The
 * file is read when the first TLS connection opens: never for an http endpoint, never
 * for a local repository, never at start-up (NODE_EXTRA_CA_CERTS, the alternative, costs
 * every process 20-75 ms before it runs a line).
 *
 * Node's `ca` option replaces the roots instead of adding to them, and a TLS context
 * built from the ~145 bundled roots plus the file costs ~20 ms. So a connection may
 * first trust the file alone ("file", what a private CA needs, at no cost) and, when the
 * certificate does not chain to it, again with the roots added ("file-and-roots"): the
 * certificates accepted are exactly those that chain to either.
 */
import { readFileSync } from "node:fs";
import { Agent, type AgentOptions, type RequestOptions } from "node:https";
import type { Duplex } from "node:stream";
import { rootCertificates } from "node:tls";
import { describeSystemError, UsageError } from "../errors.js";

export type Trust = "file" | "file-and-roots";

export class CaFile {
  private pem: string | undefined;

  constructor(readonly path: string) {}

  /** The file's PEM text, read on first use; UsageError when unreadable or certificate-less. */
  certificates(): string {
    if (this.pem !== undefined) return this.pem;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      throw new UsageError(
        `cannot read --s3-ca-file ${this.path}: ${describeSystemError(error)}`,
        "it must be readable by the user running pgha (archive_command runs as postgres)",
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new UsageError(
        `--s3-ca-file ${this.path} holds no PEM certificate`,
        "give the CA certificate(s) the S3 endpoint's certificate chains to, PEM-encoded",
      );
    }
    this.pem = text;
    return text;
  }

  /** The `ca` option for a trust level. */
  ca(trust: Trust): string | string[] {
    const file = this.certificates();
    return trust === "file" ? file : [...rootCertificates, file];
  }
}

/** TLS errors that mean "no chain to a trusted root": worth a try with the roots added. */
const UNTRUSTED_CHAIN = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
]);

export function isUntrustedChain(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && UNTRUSTED_CHAIN.has(code);
}

/**
 * A keep-alive https agent whose connections trust `file` at `trust`, reading it when
 * the first connection opens. An unreadable file fails that request with a UsageError.
 */
export function trustingAgent(file: CaFile, trust: Trust, options: AgentOptions = {}): Agent {
  return new CaFileAgent(file, trust, { keepAlive: true, ...options });
}

class CaFileAgent extends Agent {
  constructor(
    private readonly file: CaFile,
    private readonly trust: Trust,
    options: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    let ca: string | string[];
    try {
      ca = this.file.ca(this.trust);
    } catch (error) {
      // The agent reports it through the request's 'error' event.
      callback?.(error as Error, undefined as unknown as Duplex);
      return undefined;
    }
    return super.createConnection({ ...options, ca }, callback);
  }
}
