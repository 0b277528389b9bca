/** Rendering recovery configuration: quoting, stale settings, blank targets, PostgreSQL 11. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import {
  confValue,
  renderRecoveryConfig,
  restoreCommandLine,
  shellWord,
  withBlankTargets,
} from "../../src/restore/recovery-config.js";
import { writeRecoveryConfig } from "../../src/restore/write-recovery-config.js";

describe("recovery configuration", () => {
  it("quotes values as ALTER SYSTEM does, and shell words for restore_command", () => {
    expect(confValue("it's C:\\tmp")).toBe("'it''s C:\\\\tmp'");
    expect(shellWord("/plain/path")).toBe("/plain/path");
    expect(shellWord("/with space/it's")).toBe("'/with space/it'\\''s'");
    expect(shellWord("/100%/x")).toBe("'/100%%/x'");
  });

  it("blanks every other target before the chosen one", () => {
    expect(withBlankTargets([["recovery_target_lsn", "0/1"]]).map(([k, v]) => `${k}=${v}`)).toEqual(
      [
        "recovery_target=",
        "recovery_target_name=",
        "recovery_target_time=",
        "recovery_target_xid=",
        "recovery_target_lsn=0/1",
      ],
    );
  });

  it("replaces the settings of an earlier restore instead of appending after them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-conf-"));
    try {
      await writeFile(
        join(dir, "postgresql.auto.conf"),
        "work_mem = '8MB'\n# pgha restore of an earlier backup\nrestore_command = 'old'\nrecovery_target_time = '2026-01-01 00:00:00+00'\nrecovery_target_action = 'promote'\narchive_mode = 'off'\n",
      );
      await writeRecoveryConfig(dir, {
        versionNum: 150000,
        settings: [
          ["restore_command", "new %f %p"],
          ["recovery_target_timeline", "latest"],
        ],
        server: [["archive_mode", "on"]],
        mode: "recovery",
        comment: "test",
      });
      const text = await readFile(join(dir, "postgresql.auto.conf"), "utf8");
      expect(text).toContain("work_mem = '8MB'");
      expect(text).not.toContain("'old'");
      expect(text).not.toContain("2026-01-01");
      expect(text).not.toContain("archive_mode = 'off'");
      expect(text).toMatch(/recovery_target_time = ''\n[\s\S]*restore_command = 'new %f %p'/);
      expect(await readFile(join(dir, "recovery.signal"), "utf8")).toBe("");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes recovery.conf for PostgreSQL 11, with standby_mode for a standby", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pgha-conf-"));
    try {
      await writeRecoveryConfig(dir, {
        versionNum: 110000,
        settings: [
          ["primary_conninfo", "host=p"],
          ["recovery_target_timeline", "latest"],
        ],
        server: [],
        mode: "standby",
        comment: "test",
      });
      expect(await readFile(join(dir, "recovery.conf"), "utf8")).toBe(
        "# test\nstandby_mode = 'on'\nprimary_conninfo = 'host=p'\nrecovery_target_timeline = 'latest'\n",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("renders standby.signal and the settings for PostgreSQL 12+, keeping unrelated lines", () => {
    const files = renderRecoveryConfig(
      {
        versionNum: 150000,
        mode: "standby",
        settings: [["primary_conninfo", "host=p"]],
        server: [["port", "5433"]],
        comment: "pgha standby",
      },
      "work_mem = '8MB'\nport = '5432'\nprimary_conninfo = 'host=old'\n",
    );
    expect(files.map((f) => [f.name, f.mode])).toEqual([
      ["postgresql.auto.conf", undefined],
      ["standby.signal", 0o600],
    ]);
    const auto = files[0]?.content ?? "";
    expect(auto.startsWith("work_mem = '8MB'\n")).toBe(true);
    expect(auto).not.toContain("host=old");
    expect(auto).not.toContain("'5432'");
    expect(auto).toMatch(
      /# pgha standby\nport = '5433'\n(recovery_target\w* = ''\n){5}primary_conninfo = 'host=p'\n$/,
    );
  });

  it("builds restore_command from absolute paths and the repository settings, never credentials", () => {
    const env = { AWS_SECRET_ACCESS_KEY: "secret", AWS_ACCESS_KEY_ID: "key" };
    const local = resolveConfig({
      flags: { repo: "/srv/pg ha", cluster: "db1" },
      env,
      file: undefined,
    });
    expect(restoreCommandLine(local, "/usr/bin/node", "/opt/pgha/bin/pgha")).toBe(
      "PGHA_NODE=/usr/bin/node /opt/pgha/bin/pgha wal-fetch --repo '/srv/pg ha' --cluster db1 %f %p",
    );
    // Started without the shell launcher: node runs the .mjs entry itself.
    expect(restoreCommandLine(local, "/usr/bin/node", "/opt/pgha/bin/pgha.mjs")).toMatch(
      /^\/usr\/bin\/node \/opt\/pgha\/bin\/pgha\.mjs wal-fetch /,
    );
    const s3 = resolveConfig({
      flags: { repo: "s3://bucket/pre", s3Endpoint: "https://minio:9000" },
      env,
      file: { path: "cfg/pgha.json", values: {} },
    });
    const line = restoreCommandLine(s3, "/usr/bin/node", "/opt/100%/pgha");
    expect(line).toBe(
      `PGHA_NODE=/usr/bin/node '/opt/100%%/pgha' wal-fetch --config ${shellWord(join(process.cwd(), "cfg/pgha.json"))} --repo s3://bucket/pre --cluster main --s3-endpoint https://minio:9000 --s3-region us-east-1 --s3-force-path-style true --s3-checksums when_required %f %p`,
    );
    expect(line).not.toContain("secret");
  });

  it("passes the identity file of an encrypted repository to wal-fetch, never the passphrase", () => {
    const keyed = resolveConfig({
      flags: { repo: "/srv/pgha" },
      env: { PGHA_ENCRYPTION_IDENTITY_FILE: "/etc/pgha/repo key" },
      file: undefined,
    });
    expect(restoreCommandLine(keyed, "/usr/bin/node", "/opt/pgha/bin/pgha")).toBe(
      "PGHA_ENCRYPTION_IDENTITY_FILE='/etc/pgha/repo key' PGHA_NODE=/usr/bin/node /opt/pgha/bin/pgha wal-fetch --repo /srv/pgha --cluster main %f %p",
    );
    const passphrase = resolveConfig({
      flags: { repo: "/srv/pgha" },
      env: { PGHA_ENCRYPTION_PASSPHRASE: "hunter2" },
      file: undefined,
    });
    expect(restoreCommandLine(passphrase, "/usr/bin/node", "/opt/pgha/bin/pgha")).not.toContain(
      "hunter2",
    );
  });
});
