/**
 * The base64 of age headers: standard alphabet, no padding, canonical (unused trailing
 * bits zero). Node's decoder is lenient about all three, so decoding checks them.
 */

const ALPHABET = /^[A-Za-z0-9+/]*$/;

export function encodeBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    .toString("base64")
    .replace(/=+$/, "");
}

/** The decoded bytes, or null when text is not canonical unpadded base64. */
export function decodeBase64(text: string): Buffer | null {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return null;
  const data = Buffer.from(text, "base64");
  return encodeBase64(data) === text ? data : null;
}
