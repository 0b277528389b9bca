/**
 * Bech32 (BIP 173) as age uses it for keys: the original checksum constant (not
 * bech32m), no 90-character limit, and the case kept as written (age public keys are
 * lowercase "age1...", secret keys uppercase "AGE-SECRET-KEY-1..."; mixed case is
 * refused). Returns null on anything malformed: callers phrase the error.
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i] as number;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >>> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits (8 -> 5 with padding, 5 -> 8 refusing non-zero padding). */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean) {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | (data[i] as number);
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || acc !== 0) {
    return null;
  }
  return out;
}

/** Encodes data under hrp; the result is lowercase unless upper is set. */
export function encodeBech32(hrp: string, data: Uint8Array, upper = false): string {
  const lowerHrp = hrp.toLowerCase();
  const words = convertBits(data, 8, 5, true) as number[];
  const mod = polymod([...hrpExpand(lowerHrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum: number[] = [];
  for (let i = 0; i < 6; i++) checksum.push((mod >>> (5 * (5 - i))) & 31);
  const text = `${lowerHrp}1${[...words, ...checksum].map((w) => CHARSET[w]).join("")}`;
  return upper ? text.toUpperCase() : text;
}

/** The hrp (in the case written) and data of a Bech32 string, or null if it is not one. */
export function decodeBech32(text: string): { hrp: string; data: Buffer } | null {
  const lower = text.toLowerCase();
  if (lower !== text && text.toUpperCase() !== text) return null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 33 || c > 126) return null;
  }
  const sep = lower.lastIndexOf("1");
  if (sep < 1 || sep + 7 > lower.length) return null;
  const words: number[] = [];
  for (const ch of lower.slice(sep + 1)) {
    const w = CHARSET.indexOf(ch);
    if (w < 0) return null;
    words.push(w);
  }
  if (polymod([...hrpExpand(lower.slice(0, sep)), ...words]) !== 1) return null;
  const data = convertBits(words.slice(0, -6), 5, 8, false);
  if (data === null) return null;
  return { hrp: text.slice(0, sep), data: Buffer.from(data) };
}
