/**
 * The age header (https://age-encryption.org/v1, "Header"): the version line, recipient
 * stanzas ("-> type args..." and a base64 body wrapped at 64 columns, its last line
 * shorter than 64, possibly empty), and "--- " + the base64 HMAC-SHA-256 of everything
 * before the space, keyed with HKDF-SHA-256(file key, salt "", info "header").
 * Parsing is as strict as the reference implementation: no padding, canonical base64,
 * single spaces, LF only.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { decodeBase64, encodeBase64, failedAuthentication } from "./age-primitives.js";

export const AGE_INTRO = "age-encryption.org/v1\n";
const INTRO_BYTES = Buffer.from(AGE_INTRO, "latin1");
const VERSION_PREFIX = Buffer.from("age-encryption.org/", "latin1");
const BODY_LINE_BYTES = 48; // 64 base64 columns
const MAC_BYTES = 32;
/** A header that has not ended after this many bytes is refused (stanzas are small). */
export const MAX_HEADER_BYTES = 1 << 20;

export type Stanza = { type: string; args: string[]; body: Buffer };

export type ParsedHeader = {
  /** Bytes from the start of the file to the end of the MAC line: the payload starts here. */
  headerBytes: number;
  stanzas: Stanza[];
  /** The bytes the MAC covers: the header up to and including "---". */
  macInput: Buffer;
  mac: Buffer;
};

/** Whether bytes start with the age v1 version line. */
export function isAgeFile(prefix: Uint8Array): boolean {
  return (
    prefix.length >= INTRO_BYTES.length &&
    Buffer.from(prefix.buffer, prefix.byteOffset, INTRO_BYTES.length).equals(INTRO_BYTES)
  );
}

function isValidArg(arg: string): boolean {
  if (arg.length === 0) return false;
  for (let i = 0; i < arg.length; i++) {
    const c = arg.charCodeAt(i);
    if (c < 33 || c > 126) return false;
  }
  return true;
}

/**
 * Parses the header at the start of bytes. "incomplete" when bytes end before the header
 * does (read more and call again); throws IntegrityError ("failed authentication") when
 * it is not an age v1 header or is malformed. The MAC is not checked here.
 */
export function parseHeader(input: Uint8Array): ParsedHeader | "incomplete" {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const introPart = bytes.subarray(0, INTRO_BYTES.length);
  if (!INTRO_BYTES.subarray(0, introPart.length).equals(introPart)) {
    const versioned = bytes.subarray(0, VERSION_PREFIX.length).equals(VERSION_PREFIX);
    throw failedAuthentication(
      versioned
        ? "unsupported age format version"
        : "not an age file (no age-encryption.org/v1 line)",
    );
  }
  if (introPart.length < INTRO_BYTES.length) return "incomplete";
  let pos = INTRO_BYTES.length;
  const stanzas: Stanza[] = [];
  const nextLine = (): string | null => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) {
      if (bytes.length > MAX_HEADER_BYTES) throw failedAuthentication("header too long");
      return null;
    }
    const line = bytes.toString("latin1", pos, nl);
    pos = nl + 1;
    return line;
  };
  for (;;) {
    const lineStart = pos;
    const line = nextLine();
    if (line === null) return "incomplete";
    if (line.startsWith("---")) {
      const parts = line.split(" ");
      const mac =
        parts.length === 2 && parts[0] === "---" ? decodeBase64(parts[1] as string) : null;
      if (mac === null || mac.length !== MAC_BYTES)
        throw failedAuthentication("malformed header MAC line");
      return {
        headerBytes: pos,
        stanzas,
        macInput: Buffer.from(bytes.subarray(0, lineStart + 3)),
        mac,
      };
    }
    const parts = line.split(" ");
    if (parts[0] !== "->" || parts.length < 2 || !parts.slice(1).every(isValidArg)) {
      throw failedAuthentication(`malformed header line ${stanzas.length + 2}`);
    }
    const bodyParts: Buffer[] = [];
    for (;;) {
      const bodyLine = nextLine();
      if (bodyLine === null) return "incomplete";
      const decoded = decodeBase64(bodyLine);
      if (decoded === null || decoded.length > BODY_LINE_BYTES) {
        throw failedAuthentication(`malformed body of a ${parts[1]} stanza in the header`);
      }
      bodyParts.push(decoded);
      if (decoded.length < BODY_LINE_BYTES) break;
    }
    stanzas.push({
      type: parts[1] as string,
      args: parts.slice(2),
      body: Buffer.concat(bodyParts),
    });
  }
}

function macKey(fileKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fileKey, Buffer.alloc(0), "header", 32));
}

function computeMac(fileKey: Uint8Array, macInput: Uint8Array): Buffer {
  return createHmac("sha256", macKey(fileKey)).update(macInput).digest();
}

/** Throws IntegrityError unless the header's MAC is right for fileKey. */
export function verifyHeaderMac(header: ParsedHeader, fileKey: Uint8Array): void {
  if (!timingSafeEqual(computeMac(fileKey, header.macInput), header.mac)) {
    throw failedAuthentication("the header MAC does not match");
  }
}

/** The full header (through the MAC line's newline) for these stanzas and file key. */
export function formatHeader(stanzas: readonly Stanza[], fileKey: Uint8Array): Buffer {
  let text = AGE_INTRO;
  for (const s of stanzas) {
    text += `-> ${[s.type, ...s.args].join(" ")}\n`;
    const b64 = encodeBase64(s.body);
    // Full 64-column lines, then the shorter last line (empty after a full one).
    for (let i = 0; i <= b64.length; i += 64) text += `${b64.slice(i, i + 64)}\n`;
  }
  text += "---";
  const macInput = Buffer.from(text, "latin1");
  return Buffer.concat([
    macInput,
    Buffer.from(` ${encodeBase64(computeMac(fileKey, macInput))}\n`, "latin1"),
  ]);
}
