/**
 * Whether an S3 PUT's response proves what the server stored: for a single PutObject the
 * ETag is the hex MD5 of the body, except when the object is encrypted with SSE-KMS
 * (aws:kms, aws:kms:dsse) or SSE-C (the ETag is then not an MD5 of the data; SSE-S3,
 * AES256, keeps it). Multipart ETags are never an MD5 of the body: not checked here.
 *
 * Used by both S3 clients in place of reading the object back: an ETag equal to the MD5
 * that pgha computed of the bytes it sent is the server's own statement of what it
 * received and stored. Anything else (no ETag, another format, encryption) answers
 * false, and the caller reads the object back with a HEAD as before.
 */
export function etagIsMd5(
  etag: string | undefined,
  md5: Buffer,
  sse: string | undefined,
  sseCustomerAlgorithm: string | undefined,
): boolean {
  if (etag === undefined || sseCustomerAlgorithm || sse?.startsWith("aws:kms")) return false;
  return etag.replace(/"/g, "").toLowerCase() === md5.toString("hex");
}
