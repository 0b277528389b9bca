import { describe, expect, it } from "vitest";
import { type Config, resolveConfig } from "../../src/config/load.js";
import {
  defaultText,
  OPTION_KEYS,
  OPTIONS,
  type OptionKey,
  type OptionSpec,
} from "../../src/config/options.js";
import { UsageError } from "../../src/errors.js";

const none = { flags: {}, env: {}, file: undefined };

describe("configuration", () => {
  it("uses the embedded defaults when nothing is configured", () => {
    const config = resolveConfig(none);
    expect(config.repo).toEqual({ kind: "fs", path: "/var/lib/pgha", url: "file:///var/lib/pgha" });
    expect(config.cluster).toBe("main");
    expect(config.compress).toEqual({ algorithm: "zstd", level: 3 });
    expect(config.s3.checksums).toBe("when_supported");
    expect(config.s3.forcePathStyle).toBe(false);
    expect(config.retryTimeoutMs).toBe(60_000);
  });

  it("takes flags over environment over config file", () => {
    const file = {
      path: "/etc/x.json",
      values: { cluster: "from-file", compress: "none", repo: "s3://bkt/f" },
    };
    const env = { PGHA_CLUSTER: "from-env", PGHA_COMPRESS: "zstd:5" };
    const config = resolveConfig({ flags: { cluster: "from-flag" }, env, file });
    expect(config.cluster).toBe("from-flag");
    expect(config.compress).toEqual({ algorithm: "zstd", level: 5 });
    expect(config.repo).toMatchObject({ kind: "s3", bucket: "bkt", prefix: "f" });
  });

  it("parses repository locations", () => {
    const repo = (raw: string) => resolveConfig({ ...none, flags: { repo: raw } }).repo;
    expect(repo("s3://my-bucket/a/b/")).toMatchObject({
      kind: "s3",
      bucket: "my-bucket",
      prefix: "a/b",
    });
    expect(repo("s3://my-bucket")).toMatchObject({ kind: "s3", prefix: "" });
    expect(repo("file:///srv/pgha/")).toMatchObject({ kind: "fs", path: "/srv/pgha" });
    expect(repo("/srv/pgha")).toMatchObject({ kind: "fs", path: "/srv/pgha" });
  });

  it("defaults S3 checksums and path style for custom endpoints", () => {
    const config = resolveConfig({ ...none, env: { PGHA_S3_ENDPOINT: "http://127.0.0.1:9000" } });
    expect(config.s3.checksums).toBe("when_required");
    expect(config.s3.forcePathStyle).toBe(true);
    const explicit = resolveConfig({
      ...none,
      env: {
        PGHA_S3_ENDPOINT: "http://minio:9000",
        PGHA_S3_CHECKSUMS: "when_supported",
        PGHA_S3_FORCE_PATH_STYLE: "no",
      },
    });
    expect(explicit.s3.checksums).toBe("when_supported");
    expect(explicit.s3.forcePathStyle).toBe(false);
  });

  it.each([
    [{ flags: { repo: "relative/dir" } }, /--repo \(from --repo\).*not an absolute path/],
    [{ env: { PGHA_REPO: "gs://bucket" } }, /--repo \(from PGHA_REPO\).*unsupported scheme/],
    [{ env: { PGHA_REPO: "s3://A_B" } }, /not a valid bucket name/],
    [
      { env: { PGHA_COMPRESS: "zstd:99" } },
      /--compress \(from PGHA_COMPRESS\): zstd level 99 is out of range/,
    ],
    [{ env: { PGHA_COMPRESS: "gzip" } }, /not zstd, zstd:LEVEL or none/],
    [{ env: { PGHA_CLUSTER: "a/b" } }, /not a cluster name/],
    [{ env: { PGHA_S3_CHECKSUMS: "always" } }, /not one of when_supported, when_required/],
    [{ env: { PGHA_RETRY_TIMEOUT: "soon" } }, /not a duration/],
    [{ env: { PGHA_S3_PART_SIZE: "1MiB" } }, /outside 5MiB-1GiB/],
    [{ env: { PGHA_S3_ENDPOINT: "minio:9000" } }, /must start with http/],
    [{ env: { PGHA_S3_SSE_KMS_KEY_ID: "k" } }, /--s3-sse is not aws:kms/],
    [{ env: { PGHA_JOBS: "0" } }, /--jobs \(from PGHA_JOBS\).*from 1 to 256/],
    [{ flags: { jobs: "two" } }, /--jobs \(from --jobs\).*from 1 to 256/],
  ])("rejects bad values with one line naming option and source: %j", (partial, message) => {
    const attempt = () => resolveConfig({ ...none, ...partial });
    expect(attempt).toThrow(UsageError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
      expect((error as UsageError).hint).toBeTruthy();
    }
  });

  it('takes --jobs from PGHA_JOBS or the config file\'s "parallel", beside the scheduler\'s "jobs"', () => {
    const jobs = [{ name: "nightly", cron: "0 2 * * *", run: "backup" }];
    const file = { path: "/c.json", values: { parallel: 3, jobs } };
    const config = resolveConfig({ ...none, file });
    expect(config.parallel).toBe(3);
    expect(config.jobs).toEqual(jobs);
    expect(resolveConfig({ ...none, file, env: { PGHA_JOBS: "5" } }).parallel).toBe(5);
    expect(resolveConfig({ ...none, file, flags: { jobs: "1" } }).parallel).toBe(1);
    expect(() =>
      resolveConfig({ ...none, file: { path: "/c.json", values: { parallel: "many" } } }),
    ).toThrow(/--jobs \(from 'parallel' in \/c\.json\)/);
  });

  it("rejects unknown and structured keys in the config file", () => {
    const file = (values: Record<string, unknown>) => ({
      ...none,
      file: { path: "/c.json", values },
    });
    expect(() => resolveConfig(file({ repos: "/x" }))).toThrow(/unknown key 'repos'/);
    expect(() => resolveConfig(file({ repo: { path: "/x" } }))).toThrow(/must be a string/);
    expect(resolveConfig(file({ "retry-timeout": 5 })).retryTimeoutMs).toBe(5000);
  });

  it("declares every option once with a PGHA_ variable", () => {
    const envs = OPTION_KEYS.map((k) => OPTIONS[k].env);
    expect(new Set(envs).size).toBe(envs.length);
    for (const key of OPTION_KEYS) {
      expect(OPTIONS[key].env).toBe(`PGHA_${OPTIONS[key].name.toUpperCase().replace(/-/g, "_")}`);
      // commander turns --s3-force-path-style into s3ForcePathStyle: the table key must match.
      expect(key).toBe(
        OPTIONS[key].name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
      );
    }
  });

  // Where each setting lands in Config: a new option without a line here does not compile.
  const configField: Record<OptionKey, (c: Config) => unknown> = {
    repo: (c) => c.repo,
    cluster: (c) => c.cluster,
    compress: (c) => c.compress,
    retryTimeout: (c) => c.retryTimeoutMs,
    s3Endpoint: (c) => c.s3.endpoint,
    s3Region: (c) => c.s3.region,
    s3ForcePathStyle: (c) => c.s3.forcePathStyle,
    s3Checksums: (c) => c.s3.checksums,
    s3StorageClass: (c) => c.s3.storageClass,
    s3Sse: (c) => c.s3.sse,
    s3SseKmsKeyId: (c) => c.s3.sseKmsKeyId,
    s3PartSize: (c) => c.s3.partSize,
    s3CaFile: (c) => c.s3.caFile,
    encryptionRecipients: (c) => c.encryption.recipients,
    encryptionIdentityFile: (c) => c.encryption.identityFile,
    encryptionPassphraseFile: (c) => c.encryption.passphraseFile,
    pgdata: (c) => c.pgdata,
    pgConn: (c) => c.pgConn,
    pgBin: (c) => c.pgBin,
    archiveTimeout: (c) => c.archiveTimeoutMs,
    archiveAsync: (c) => c.archiveAsync,
    archiveBacklogWarn: (c) => c.archiveBacklogWarnBytes,
    prefetch: (c) => c.prefetch,
    jobs: (c) => c.parallel,
    backupMaxIncr: (c) => c.backupMaxIncr,
    backupIncrWhole: (c) => c.backupIncrWhole,
    keepLast: (c) => c.retention.last,
    keepHourly: (c) => c.retention.hourly,
    keepDaily: (c) => c.retention.daily,
    keepWeekly: (c) => c.retention.weekly,
    keepMonthly: (c) => c.retention.monthly,
    keepYearly: (c) => c.retention.yearly,
    keepWithin: (c) => c.retention.within,
    retentionZone: (c) => c.retention.zone,
    pitrWindow: (c) => c.retention.pitrWindow,
    scheduleGrace: (c) => c.scheduleGraceMs,
    logLevel: (c) => c.logLevel,
    logFormat: (c) => c.logFormat,
    logFile: (c) => c.logFile,
    onFailure: (c) => c.onFailure,
  };

  it.each(OPTION_KEYS)("documents the default of option %s as it is", (key) => {
    const spec: OptionSpec<unknown> = OPTIONS[key];
    const config = resolveConfig(none);
    const actual = configField[key](config);
    if (typeof spec.default === "string") {
      // Literal defaults: the text in help and README is exactly what resolves.
      expect(actual).toEqual(spec.parse(spec.default));
      expect(actual).not.toBeUndefined();
    } else if (spec.default.compute) {
      expect(actual).toEqual(spec.default.compute({ env: {}, given: {} }));
    } else {
      // Words only: the value stays unset and the code that uses it decides.
      expect(actual).toBeUndefined();
    }
    // And the flag given as its own documented default changes nothing.
    if (typeof spec.default === "string") {
      const explicit = resolveConfig({ ...none, flags: { [key]: defaultText(spec) } });
      expect(configField[key](explicit)).toEqual(actual);
    }
  });

  it("documents the computed defaults as they are", () => {
    const s3 = (env: Record<string, string>) => resolveConfig({ ...none, env }).s3;
    expect(s3({}).region).toBe("us-east-1");
    expect(s3({ AWS_REGION: "eu-west-3" }).region).toBe("eu-west-3");
    expect(s3({}).forcePathStyle).toBe(false);
    expect(s3({ PGHA_S3_ENDPOINT: "http://h:9000" }).forcePathStyle).toBe(true);
    expect(OPTIONS.s3Region.default.text).toBe("AWS_REGION, else us-east-1");
    expect(OPTIONS.s3ForcePathStyle.default.text).toBe("true with --s3-endpoint, else false");
  });

  it("a command that does not read a setting's group may take its invalid value as a warning", () => {
    const env = { PGHA_BACKUP_INCR_WHOLE: "abc", PGHA_KEEP_DAILY: "-1" };
    const sources = { flags: {}, env, file: undefined };
    expect(() => resolveConfig(sources)).toThrow(UsageError);
    const warnings: string[] = [];
    const config = resolveConfig({
      ...sources,
      lenient: new Set(["backupIncrWhole", "keepDaily"] as const),
      warnings,
    });
    expect(config.backupIncrWhole).toBe(50);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      /^invalid value for --backup-incr-whole \(from PGHA_BACKUP_INCR_WHOLE\), a setting this command does not use: .*; ignored$/,
    );
    // A structured value in the config file, too.
    const structured: string[] = [];
    const file = { path: "/etc/pgha/pgha.json", values: { "keep-daily": [3] } };
    expect(() => resolveConfig({ flags: {}, env: {}, file })).toThrow(UsageError);
    resolveConfig({
      flags: {},
      env: {},
      file,
      lenient: new Set(["keepDaily"] as const),
      warnings: structured,
    });
    expect(structured).toEqual([
      "config file /etc/pgha/pgha.json: 'keep-daily' must be a string, number or boolean, a setting this command does not use; ignored",
    ]);
    // Only the settings named: an invalid storage setting still fails.
    expect(() =>
      resolveConfig({
        ...sources,
        env: { ...env, PGHA_RETRY_TIMEOUT: "soon" },
        lenient: new Set(["backupIncrWhole", "keepDaily"] as const),
      }),
    ).toThrow(/--retry-timeout/);
  });
});
