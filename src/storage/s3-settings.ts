/** What the S3 stores need besides bucket and prefix. Resolved from the option table by src/config/load.ts. */

/** The AWS SDK's request/response checksum mode. */
export type S3Checksums = "when_supported" | "when_required";

export interface S3Settings {
  /** Unset: AWS S3. */
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  checksums: S3Checksums;
  storageClass: string | undefined;
  sse: "AES256" | "aws:kms" | undefined;
  sseKmsKeyId: string | undefined;
  /** Bodies larger than this go up as multipart uploads of parts this size. */
  partSize: number;
  /** PEM CA certificate(s) trusted besides Node's roots, read when a TLS connection opens. */
  caFile: string | undefined;
}
