/**
 * JSON documents in the repository (manifests, drill reports, scheduler state): stored
 * uncompressed with content metadata, so every read is checked against its sha256.
 */
import { createHash } from "node:crypto";
import { AlreadyExistsError, IntegrityError, NotFoundError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type JsonStreamOptions, JsonStreamParser } from "./json-stream.js";
import { decodeContentMeta, encodeContentMeta } from "./object-meta.js";

/** Stores value under key. With ifAbsent, an existing key throws `exists()` instead. */
export async function putJson(
  store: ObjectStore,
  key: string,
  value: unknown,
  options: { ifAbsent?: boolean; exists?: () => Error } = {},
): Promise<void> {
  const body = jsonBody(value);
  const sha256 = createHash("sha256").update(body).digest("hex");
  try {
    await store.put(key, body, {
      ...(options.ifAbsent ? { ifAbsent: true } : {}),
      metadata: encodeContentMeta({ sha256, rawSize: body.length, compression: "none" }),
    });
  } catch (error) {
    if (error instanceof AlreadyExistsError && options.exists) throw options.exists();
    throw error;
  }
}

/** Arrays longer than this are serialized an element at a time. */
const LONG_ARRAY = 1000;
/** Serialized text is handed on in pieces of about this many characters. */
const PIECE = 1 << 16;

/**
 * `JSON.stringify(value, null, 1) + "\n"` as bytes, the same bytes, without ever holding
 * the whole text as one string: a manifest of 100,000 files is 20 MB of text, and the
 * string, its flattened copy and the bytes together cost a backup 60 MB at its end. The
 * long arrays of a plain top-level object (a manifest's files) are serialized an element
 * at a time, twice: once to count the bytes, once to write them into a buffer of exactly
 * that size. Anything else goes to JSON.stringify whole.
 */
export function jsonBody(value: unknown): Buffer {
  const plain =
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function";
  const long = plain && Object.values(value).some((v) => Array.isArray(v) && v.length > LONG_ARRAY);
  if (!long) return Buffer.from(`${JSON.stringify(value, null, 1)}\n`);
  let size = 0;
  for (const piece of jsonPieces(value as Record<string, unknown>))
    size += Buffer.byteLength(piece);
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  for (const piece of jsonPieces(value as Record<string, unknown>)) at += body.write(piece, at);
  if (at !== size) throw new Error(`jsonBody wrote ${at} bytes of ${size}`);
  return body;
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
    if (!Array.isArray(member) || member.length <= LONG_ARRAY) {
      text += nested(JSON.stringify(member, null, 1), 1);
      continue;
    }
    text += "[";
    for (const [i, element] of member.entries()) {
      const json = JSON.stringify(element, null, 1) ?? "null";
      text += `${i === 0 ? "" : ","}\n  ${nested(json, 2)}`;
      if (text.length >= PIECE) {
        yield text;
        text = "";
      }
    }
    text += "\n ]";
  }
  yield `${text}\n}\n`;
}

/**
 * Reads and verifies a JSON document; a missing key throws `missing()`. `options`: top-level
 * arrays left unparsed or handed over element by element (json-stream.ts).
 */
export async function getJson<T>(
  store: ObjectStore,
  key: string,
  missing: () => Error,
  options?: JsonStreamOptions,
): Promise<T> {
  let got: Awaited<ReturnType<ObjectStore["get"]>>;
  try {
    got = await store.get(key);
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
  for await (const chunk of got.body) {
    hash.update(chunk as Uint8Array);
    if (invalid) continue;
    try {
      parser.write(chunk as Uint8Array);
    } catch (error) {
      invalid = error as Error;
    }
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
