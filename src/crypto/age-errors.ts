/**
 * The codec's failures. Everything that makes an age file unreadable with keys that fit
 * it (a damaged or malformed header, a wrong header MAC, a chunk whose tag fails, a
 * truncated or extended payload) is one IntegrityError saying "failed authentication":
 * the bytes are not what an encrypter with a recipient's key wrote.
 */
import { IntegrityError } from "../errors.js";

export function failedAuthentication(detail: string): IntegrityError {
  return new IntegrityError(
    `age: failed authentication: ${detail}`,
    "the object was damaged or modified after it was encrypted; restore it from another copy",
  );
}

/**
 * None of the identities unwraps any recipient stanza: the file was encrypted to other
 * keys (or its stanzas are damaged, which cannot be told apart). Exit 6 like every other
 * failed authentication: the data cannot be authenticated with the keys at hand, and
 * wal-fetch must fail closed on it rather than report "not available".
 */
export class NoMatchingIdentityError extends IntegrityError {
  readonly stanzaTypes: readonly string[];
  constructor(stanzaTypes: readonly string[], identityKinds: readonly string[]) {
    super(
      `age: no identity matches: the object is encrypted to ${describeStanzas(stanzaTypes)}, and the ${identityKinds.length === 0 ? "identity list is empty" : `identities given (${identityKinds.join(", ")}) unwrap none of them`}`,
      "use the identity file (or passphrase) of one of the recipients the object was encrypted to",
    );
    this.stanzaTypes = stanzaTypes;
  }
}

function describeStanzas(types: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const t of types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const parts = [...counts].map(([t, n]) =>
    t === "scrypt" ? "a passphrase" : `${n} ${t} key${n === 1 ? "" : "s"}`,
  );
  return parts.length === 0 ? "no recipient" : parts.join(" and ");
}
