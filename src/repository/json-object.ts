/**
 * JSON documents in the repository (manifests, drill reports, scheduler state): stored
 * uncompressed with content metadata, so every read is checked against its sha256.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { AlreadyExistsError, IntegrityError, NotFoundError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { ChangedWhileReadError, resumingGet } from "../storage/retrying-store.js";
import { readFailure } from "../storage/streams.js";
import { type JsonStreamOptions, JsonStreamParser } from "./json-stream.js";
import { decodeContentMeta, encodeContentMeta } from "./object-meta.js";

/**
 * Stores value under key. With ifAbsent, an existing key throws `exists()` instead. A
 * document with long arrays (a manifest's files) is streamed to the store a piece at a
 * time, never held as one buffer (jsonText).
 */
export async function putJson(
  store: ObjectStore,
  key: string,
  value: unknown,
  options: { ifAbsent?: boolean; exists?: () => Error } = {},
): Promise<void> {
  const text = jsonText(value);
  try {
    await store.put(key, text.whole ?? Readable.from(text.pieces()), {
      ...(options.ifAbsent ? { ifAbsent: true } : {}),
      metadata: encodeContentMeta({
        sha256: text.sha256,
        rawSize: text.size,
        compression: "none",
      }),
    });
  } catch (error) {
    if (error instanceof AlreadyExistsError && options.exists) throw options.exists();
    throw error;
  }
}

/** Arrays longer than this (or holding long strings) are serialized an element at a time. */
const LONG_ARRAY = 1000;
/** Serialized text is handed on in pieces of about this many characters. */
const PIECE = 1 << 16;

/** The bytes of `JSON.stringify(value, null, 1) + "\n"`: their size and sha256, and the bytes. */
export interface JsonText {
  size: number;
  sha256: string;
  /** All the bytes, for a document without long arrays. */
  whole: Buffer | undefined;
  /** The bytes again, a piece at a time; throws at the end if they are not those counted. */
  pieces(): Generator<Buffer>;
}

/**
 * jsonText: a document's bytes without ever holding them whole (nor as one string). The
 * long arrays of a plain top-level object (a manifest's files: many, or few with block
 * maps of 1 GiB files) are serialized an element at a time, twice: once to count and hash
 * the bytes (the store's metadata comes before the body), once as they are stored; long
 * strings (block maps) are handed on in slices. With block maps a manifest holds about
 * 3 MB of text per GiB of relation data: stringified whole, it cost a backup of 24 GiB
 * about 210 MB at its end. Anything else goes to JSON.stringify whole.
 */
export function jsonText(value: unknown): JsonText {
  const plain =
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function";
  const long = plain && Object.values(value).some(isLongArray);
  if (!long) {
    const whole = Buffer.from(`${JSON.stringify(value, null, 1)}\n`);
    return {
      size: whole.length,
      sha256: createHash("sha256").update(whole).digest("hex"),
      whole,
      *pieces() {
        yield whole;
      },
    };
  }
  const doc = value as Record<string, unknown>;
  const counted = createHash("sha256");
  let size = 0;
  for (const piece of jsonPieces(doc)) {
    counted.update(piece, "utf8");
    size += Buffer.byteLength(piece);
  }
  const sha256 = counted.digest("hex");
  return {
    size,
    sha256,
    whole: undefined,
    *pieces() {
      const again = createHash("sha256");
      let at = 0;
      for (const piece of jsonPieces(doc)) {
        const bytes = Buffer.from(piece);
        again.update(bytes);
        at += bytes.length;
        yield bytes;
      }
      // The value changed between the passes: the metadata would not match the body.
      if (at !== size || again.digest("hex") !== sha256)
        throw new Error(`a JSON document changed while it was stored (${at} of ${size} bytes)`);
    },
  };
}

/** jsonText's bytes in one buffer (for tests and small documents). */
export function jsonBody(value: unknown): Buffer {
  const text = jsonText(value);
  return text.whole ?? Buffer.concat([...text.pieces()]);
}

/** The text of jsonBody, in pieces of about PIECE characters. */
function* jsonPieces(value: Record<string, unknown>): Generator<string> {
  let text = "";
  // Nested lines get one more space of indentation per level, as JSON.stringify gives them.
  const nested = (json: string, depth: number) => json.replaceAll("\n", `\n${" ".repeat(depth)}`);
  const members = Object.entries(value).filter(
    ([, v]) => v !== undefined && typeof v !== "function" && typeof v !== "symbol",
  );
  if (members.length === 0) {
    yield "{}\n";
    return;
  }
  text += "{";
  for (const [at, [key, member]] of members.entries()) {
    text += `${at === 0 ? "" : ","}\n ${JSON.stringify(key)}: `;
    if (!isLongArray(member)) {
      text += nested(JSON.stringify(member, null, 1), 1);
      continue;
    }
    text += "[";
    for (const [i, element] of member.entries()) {
      text += `${i === 0 ? "" : ","}\n  `;
      if (hasLongString(element)) {
        // A block map of a big file: its long strings are handed on in slices, never
        // copied into the element's text (nor that into a piece).
        yield text;
        text = "";
        yield* elementPieces(element, nested);
        continue;
      }
      text += nested(JSON.stringify(element, null, 1) ?? "null", 2);
      if (text.length >= PIECE) {
        yield text;
        text = "";
      }
    }
    text += "\n ]";
  }
  yield `${text}\n}\n`;
}

/** A string JSON.stringify writes as it is between quotes: printable ASCII but `"` and `\\`. */
const VERBATIM = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * An array serialized an element at a time: a long one, or one holding long strings (the
 * files of a small cluster's manifest, a few of them 1 GiB relation files with their maps).
 */
function isLongArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && (value.length > LONG_ARRAY || value.some((e) => hasLongString(e)));
}

/**
 * Marks an object whose string members are long and read on demand (a block map kept in a
 * temporary file, backup/map-spill.ts): hasLongString says yes without reading them.
 */
export const LONG_TEXT = Symbol("pgha.longText");

/** Whether `value` holds (in its first levels) a string of PIECE or more characters. */
function hasLongString(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return value.length >= PIECE;
  if (typeof value !== "object" || value === null || depth > 3) return false;
  if ((value as { [LONG_TEXT]?: boolean })[LONG_TEXT] === true) return true;
  return Object.values(value).some((v) => hasLongString(v, depth + 1));
}

/**
 * An element of a long array as jsonPieces writes it (JSON.stringify(element, null, 1), two
 * more spaces of indentation a line), its long verbatim strings in slices of PIECE: each
 * is stood in for by a token no other string can be (a random nonce), found again in
 * the element's text, and replaced there by its own characters.
 */
function* elementPieces(
  element: unknown,
  nested: (json: string, depth: number) => string,
): Generator<string> {
  const nonce = randomBytes(12).toString("hex");
  const long: string[] = [];
  const json = JSON.stringify(
    element,
    (_key, v: unknown) => {
      if (typeof v !== "string" || v.length < PIECE || !VERBATIM.test(v)) return v;
      long.push(v);
      return `pgha-long-${nonce}-${long.length - 1}`;
    },
    1,
  );
  let rest = nested(json ?? "null", 2);
  for (const [n, value] of long.entries()) {
    const token = `"pgha-long-${nonce}-${n}"`;
    const at = rest.indexOf(token);
    if (at === -1) throw new Error("jsonPieces lost a long string");
    yield `${rest.slice(0, at)}"`;
    for (let from = 0; from < value.length; from += PIECE) yield value.slice(from, from + PIECE);
    yield '"';
    rest = rest.slice(at + token.length);
  }
  yield rest;
}

/**
 * Reads and verifies a JSON document; a missing key throws `missing()`. `options`: top-level
 * arrays left unparsed or handed over element by element (json-stream.ts). A read that
 * breaks off (a connection reset in the middle of the body) goes on where it broke
 * (resumingGet: within the store's retry budget counted from the last byte read, as a
 * manifest of a big cluster may take longer than the budget to read), so `each` sees
 * every element once.
 */
export async function getJson<T>(
  store: ObjectStore,
  key: string,
  missing: () => Error,
  options?: JsonStreamOptions,
  rereads = 3,
): Promise<T> {
  let got: Awaited<ReturnType<typeof resumingGet>>;
  try {
    got = await resumingGet(store, key);
  } catch (error) {
    if (error instanceof NotFoundError) throw missing();
    throw error;
  }
  // Hashed and parsed as it arrives (json-stream.ts), never held as one text: a manifest
  // of 100,000 files is 30 MB of text, which with its flattened copy and its objects set
  // the peak RSS of a restore. Nothing parsed is returned before the checksum matched.
  const hash = createHash("sha256");
  const parser = new JsonStreamParser(options);
  let invalid: Error | undefined;
  try {
    for await (const chunk of got.chunks) {
      hash.update(chunk);
      if (invalid) continue;
      try {
        parser.write(chunk);
      } catch (error) {
        invalid = error as Error;
      }
    }
  } catch (error) {
    if (error instanceof NotFoundError) throw missing(); // it went after the first GET
    // Rewritten meanwhile (a verify record, a pin: never a manifest, which `each` reads):
    // the new one is read whole.
    if (error instanceof ChangedWhileReadError && !options?.each && rereads > 0)
      return getJson<T>(store, key, missing, options, rereads - 1);
    throw readFailure(`${store.url}/${key}`, error);
  }
  if (hash.digest("hex") !== decodeContentMeta(key, got.info.metadata).sha256) {
    throw new IntegrityError(`${store.url}/${key} is corrupt (checksum mismatch)`);
  }
  try {
    if (invalid) throw invalid;
    return parser.end() as T;
  } catch (error) {
    // The checksum matches: it was stored like this (written by something else, or crafted).
    throw new IntegrityError(
      `${store.url}/${key} is corrupt: not valid JSON (${(error as Error).message})`,
    );
  }
}
