/** Where S3HttpStore finds static keys, and when it leaves the credentials to the AWS SDK. */
import { describe, expect, it } from "vitest";
import { findStaticCredentials, parseIni } from "../../src/storage/aws-credentials.js";

const files =
  (byPath: Record<string, string>) =>
  (path: string): string | undefined =>
    byPath[path];

const HOME = "/home/pg";
const CONFIG = `${HOME}/.aws/config`;
const CREDENTIALS = `${HOME}/.aws/credentials`;

describe("findStaticCredentials", () => {
  it("takes the environment's keys first, as the SDK does", () => {
    const env = {
      HOME,
      AWS_ACCESS_KEY_ID: "AKENV",
      AWS_SECRET_ACCESS_KEY: "s",
      AWS_SESSION_TOKEN: "t",
    };
    const read = files({
      [CREDENTIALS]: "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = f\n",
    });
    for (const customEndpoint of [true, false]) {
      expect(findStaticCredentials(env, { customEndpoint, read })).toEqual({
        credentials: { accessKeyId: "AKENV", secretAccessKey: "s", sessionToken: "t" },
        from: "environment",
      });
    }
  });

  it("skips the environment when AWS_PROFILE is set, and reads that profile", () => {
    const env = {
      HOME,
      AWS_PROFILE: "arch",
      AWS_ACCESS_KEY_ID: "AKENV",
      AWS_SECRET_ACCESS_KEY: "s",
    };
    const read = files({
      [CREDENTIALS]:
        "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = d\n\n[arch]\naws_access_key_id = AKARCH # comment\naws_secret_access_key = a\n",
    });
    expect(findStaticCredentials(env, { customEndpoint: true, read })).toEqual({
      credentials: { accessKeyId: "AKARCH", secretAccessKey: "a", sessionToken: undefined },
      from: "profile 'arch'",
    });
  });

  it("merges the config file's [profile name] with the credentials file, which wins", () => {
    const read = files({
      [CONFIG]:
        "[profile arch]\nregion = eu-west-1\naws_access_key_id = AKCONF\naws_secret_access_key = c\n",
      [CREDENTIALS]: "[arch]\naws_access_key_id = AKCRED\n",
    });
    expect(
      findStaticCredentials({ HOME, AWS_PROFILE: "arch" }, { customEndpoint: false, read }),
    ).toEqual({
      credentials: { accessKeyId: "AKCRED", secretAccessKey: "c", sessionToken: undefined },
      from: "profile 'arch'",
    });
  });

  it("honours AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, ~/ included", () => {
    const read = files({
      [`${HOME}/creds`]: "[default]\naws_access_key_id=A\naws_secret_access_key=B\n",
    });
    const found = findStaticCredentials(
      { HOME, AWS_SHARED_CREDENTIALS_FILE: "~/creds", AWS_CONFIG_FILE: "/none" },
      { customEndpoint: true, read },
    );
    expect(found).toMatchObject({ credentials: { accessKeyId: "A", secretAccessKey: "B" } });
  });

  it.each([
    ["an assumed role", "role_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"],
    ["credential_process", "credential_process = /bin/creds\n"],
    ["SSO", "sso_session = corp\nsso_account_id = 1\nsso_role_name = r\n"],
    ["web identity", "web_identity_token_file = /t\nrole_arn = arn:aws:iam::1:role/x\n"],
    [
      "an endpoint of its own",
      "aws_access_key_id = A\naws_secret_access_key = B\nendpoint_url = http://x\n",
    ],
    [
      "nested settings",
      "aws_access_key_id = A\naws_secret_access_key = B\ns3 =\n  addressing_style = path\n",
    ],
  ])("leaves a profile with %s to the SDK", (_, body) => {
    const read = files({ [CONFIG]: `[profile p]\n${body}` });
    const found = findStaticCredentials(
      { HOME, AWS_PROFILE: "p" },
      { customEndpoint: false, read },
    );
    expect(found).toHaveProperty("sdk");
  });

  it("leaves instance and container roles to the SDK: no keys anywhere", () => {
    expect(
      findStaticCredentials(
        { HOME, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/x" },
        {
          customEndpoint: true,
          read: files({}),
        },
      ),
    ).toEqual({ sdk: "no static keys in the environment or in profile 'default'" });
    expect(
      findStaticCredentials(
        { HOME, AWS_ACCESS_KEY_ID: "A" },
        { customEndpoint: true, read: files({}) },
      ),
    ).toHaveProperty("sdk");
  });

  it("without --s3-endpoint, leaves endpoint settings of the environment or profile to the SDK", () => {
    const keys = { HOME, AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "B" };
    for (const name of ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_USE_FIPS_ENDPOINT"]) {
      const env = { ...keys, [name]: "true" };
      expect(findStaticCredentials(env, { customEndpoint: false, read: files({}) })).toEqual({
        sdk: `${name} is set`,
      });
      // With --s3-endpoint the SDK ignores them too.
      expect(findStaticCredentials(env, { customEndpoint: true, read: files({}) })).toHaveProperty(
        "credentials",
      );
    }
    const read = files({ [CONFIG]: "[default]\nservices = local\n" });
    expect(findStaticCredentials(keys, { customEndpoint: false, read })).toHaveProperty("sdk");
    expect(findStaticCredentials(keys, { customEndpoint: true, read })).toHaveProperty(
      "credentials",
    );
  });
});

describe("parseIni", () => {
  it("reads sections, comments and sub-sections as the SDK does", () => {
    expect(
      parseIni(
        "; top\n[default]\nregion = eu-west-1 ; trailing\n# whole line\ns3 =\n  max_concurrent_requests = 4\noutput=json\n[profile  x]\nkey = a=b\n",
      ),
    ).toEqual({
      default: { region: "eu-west-1", "s3.max_concurrent_requests": "4", output: "json" },
      "profile x": { key: "a=b" },
    });
  });
});
