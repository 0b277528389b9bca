/**
 * Static AWS credentials for S3HttpStore, found where the AWS SDK's default chain looks
 * first, with the SDK's precedence:
 *
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), unless AWS_PROFILE
 *      is set (the SDK then skips the environment too);
 *   2. the profile AWS_PROFILE (else "default") of the shared files, AWS_CONFIG_FILE
 *      (~/.aws/config, `[profile name]` sections) merged with AWS_SHARED_CREDENTIALS_FILE
 *      (~/.aws/credentials, which wins key by key), when it holds plain keys.
 *
 * Everything else the chain can do (assumed roles, SSO, web identity, credential_process,
 * container and instance roles) is the SDK's: the answer is then `{ sdk: reason }` and
 * openStore() uses the SDK-based S3Store, exactly as before. So is any setting of the
 * environment or the profile that changes where or how the SDK sends requests and that
 * this module does not know (an allowlist: unknown keys fall back, they are not ignored).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { AwsCredentials } from "./sigv4.js";

export type CredentialSource = { credentials: AwsCredentials; from: string } | { sdk: string };

type Env = Readonly<Record<string, string | undefined>>;
type Profile = Record<string, string>;

/** Profile keys that leave the SDK's requests as S3HttpStore makes them. */
const KNOWN_PROFILE_KEYS = new Set([
  "aws_access_key_id",
  "aws_secret_access_key",
  "aws_session_token",
  "aws_account_id",
  "region", // pgha passes --s3-region to the SDK explicitly
  "output",
  "max_attempts", // pgha sets the SDK's attempts itself
  "retry_mode",
]);

/** Environment variables that make the SDK send requests elsewhere or otherwise. */
const SDK_ONLY_ENV = [
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_S3",
  "AWS_USE_FIPS_ENDPOINT",
  "AWS_USE_DUALSTACK_ENDPOINT",
];

/**
 * Where S3HttpStore can sign with static keys, and where the SDK must take over. `custom`:
 * whether --s3-endpoint is set (then the SDK ignores endpoint settings of the environment).
 */
export function findStaticCredentials(
  env: Env,
  options: { customEndpoint: boolean; read?: (path: string) => string | undefined },
): CredentialSource {
  const read = options.read ?? readOptional;
  if (!options.customEndpoint) {
    const set = SDK_ONLY_ENV.find((name) => env[name]);
    if (set) return { sdk: `${set} is set` };
  }
  const profileName = env.AWS_PROFILE || undefined;
  const fromEnv =
    profileName === undefined && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          sessionToken: env.AWS_SESSION_TOKEN || undefined,
        }
      : undefined;
  // Without --s3-endpoint the SDK also takes endpoint settings from the profile, so it is
  // read even when the keys come from the environment.
  if (fromEnv && options.customEndpoint) return { credentials: fromEnv, from: "environment" };
  const name = profileName ?? "default";
  const home = env.HOME || homedir();
  const expand = (path: string) => (path.startsWith("~/") ? join(home, path.slice(2)) : path);
  const configText = read(expand(env.AWS_CONFIG_FILE || join(home, ".aws", "config")));
  const credentialsText = read(
    expand(env.AWS_SHARED_CREDENTIALS_FILE || join(home, ".aws", "credentials")),
  );
  const profile: Profile = {
    ...(configText === undefined ? {} : configProfiles(parseIni(configText))[name]),
    ...(credentialsText === undefined ? {} : parseIni(credentialsText)[name]),
  };
  const unknown = Object.keys(profile).find((key) => !KNOWN_PROFILE_KEYS.has(key));
  if (unknown !== undefined) return { sdk: `profile '${name}' sets ${unknown}` };
  if (fromEnv) return { credentials: fromEnv, from: "environment" };
  const id = profile.aws_access_key_id;
  const secret = profile.aws_secret_access_key;
  if (id && secret) {
    return {
      credentials: {
        accessKeyId: id,
        secretAccessKey: secret,
        sessionToken: profile.aws_session_token || undefined,
      },
      from: `profile '${name}'`,
    };
  }
  return { sdk: `no static keys in the environment or in profile '${name}'` };
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // the SDK treats a missing or unreadable file as empty too
  }
}

/**
 * The SDK's INI reading: sections by name; `;` or `#` at the start or after whitespace
 * begins a comment; `key =` with nothing after it opens a sub-section whose indented
 * lines are stored as `key.sub`.
 */
export function parseIni(text: string): Record<string, Profile> {
  const sections: Record<string, Profile> = Object.create(null);
  let section: string | undefined;
  let sub: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = (raw.split(/(?:^|\s)[;#]/)[0] ?? "").trim();
    if (line.startsWith("[") && line.endsWith("]")) {
      section = line.slice(1, -1).trim().replace(/\s+/g, " ");
      sub = undefined;
      continue;
    }
    const eq = line.indexOf("=");
    if (section === undefined || eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (value === "") {
      sub = key;
      continue;
    }
    if (sub !== undefined && raw.trimStart() === raw) sub = undefined;
    sections[section] ??= Object.create(null) as Profile;
    (sections[section] as Profile)[sub === undefined ? key : `${sub}.${key}`] = value;
  }
  return sections;
}

/**
 * The config file's profiles: `[default]`, replaced by `[profile default]` when both are
 * there (as the SDK does), and `[profile name]`; other sections are not profiles.
 */
function configProfiles(sections: Record<string, Profile>): Record<string, Profile> {
  const out: Record<string, Profile> = Object.create(null);
  if (sections.default) out.default = sections.default;
  for (const [section, values] of Object.entries(sections)) {
    const named = /^profile\s+(["']?)([^"']+)\1$/.exec(section);
    if (named?.[2] !== undefined) out[named[2]] = values;
  }
  return out;
}
