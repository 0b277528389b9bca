/** loadContext: wal-push and wal-fetch do not stop over a setting they never read. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadContext } from "../../src/cli/context.js";
import { HOT_COMMANDS } from "../../src/cli/hot-args.js";
import { UsageError } from "../../src/errors.js";

const saved = { ...process.env };
const cleanup: string[] = [];
afterEach(() => {
  for (const dir of cleanup.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe("loadContext", () => {
  it("archive_command and restore_command pass over an invalid backup or retention setting", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgha-context-"));
    cleanup.push(dir);
    process.env.PGHA_CONFIG = join(dir, "pgha.json");
    writeFileSync(process.env.PGHA_CONFIG, "{}\n");
    process.env.PGHA_BACKUP_INCR_WHOLE = "abc";
    process.env.PGHA_KEEP_DAILY = "-3";
    process.env.PGHA_LOG_LEVEL = "error";
    for (const command of ["wal-push", "wal-fetch"] as const) {
      const { config } = loadContext({ settings: {} }, HOT_COMMANDS[command].groups);
      expect(config.backupIncrWhole).toBe(50);
    }
    // Any other command fails on it, as before.
    expect(() => loadContext({ settings: {} })).toThrow(UsageError);
    // A setting the hot commands read still fails them.
    process.env.PGHA_RETRY_TIMEOUT = "soon";
    expect(() => loadContext({ settings: {} }, HOT_COMMANDS["wal-push"].groups)).toThrow(
      /--retry-timeout/,
    );
  });
});
