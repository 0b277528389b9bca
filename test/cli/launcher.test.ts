/**
 * bin/pgha, the shell launcher: the fast answers it gives without Node.js, and every case
 * where it must not answer. PGHA_NODE=false stands in for Node.js: a call the launcher
 * does not answer itself exits 1.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NODE_FLAGS, nodeFlagsFor } from "../../src/cli/node-flags.js";
import { CALL_ID_ENV, callId } from "../../src/wal/spool.js";
import { PGHA_BIN } from "../helpers/pgha.js";

const SEGMENT = "000000010000000A000000FF";
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgha-launcher-"));
  await mkdir(join(dir, "pg_wal", ".pgha", "archive", "ok"), { recursive: true });
  await mkdir(join(dir, "pg_wal", ".pgha", "prefetch"), { recursive: true });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** The launcher as PostgreSQL runs it: in the data directory, with no Node.js to fall back on. */
function launch(args: string[], env: Record<string, string> = {}) {
  const clean: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  return spawnSync(PGHA_BIN, args, {
    cwd: dir,
    env: { ...clean, PGHA_NODE: "false", PGHA_CONFIG: join(dir, "none.json"), ...env },
  }).status;
}

const at = (seconds: number) => new Date(Date.UTC(2026, 10, 21, 12, 0, seconds));

async function archived(id: string, { markerAt = 20, fileAt = 10, idAt = 5 } = {}) {
  const spool = join(dir, "pg_wal", ".pgha", "archive");
  await writeFile(join(dir, "pg_wal", SEGMENT), "wal");
  await writeFile(join(spool, "ok", SEGMENT), "{}");
  await writeFile(join(spool, "id"), `${id}\n`);
  await utimes(join(dir, "pg_wal", SEGMENT), at(fileAt), at(fileAt));
  await utimes(join(spool, "ok", SEGMENT), at(markerAt), at(markerAt));
  await utimes(join(spool, "id"), at(idAt), at(idAt));
}

describe("bin/pgha wal-push fast path", () => {
  const env = { PGHA_REPO: "/srv/pgha", PGHA_CLUSTER: "db1" };
  const id = (args: string[], e: Record<string, string> = env, configText?: string) =>
    callId(args, { PGHA_CONFIG: join(dir, "none.json"), ...e }, configText);

  it("exits 0 for a file the archiver stored, with the same command line and environment", async () => {
    await archived(id(["wal-push"]));
    expect(launch(["wal-push", `pg_wal/${SEGMENT}`], env)).toBe(0);
    await archived(id(["wal-push", "--cluster", "db2"]));
    expect(launch(["wal-push", "--cluster", "db2", `pg_wal/${SEGMENT}`], env)).toBe(0);
  });

  it.each([
    ["another repository in the environment", { PGHA_REPO: "/srv/other", PGHA_CLUSTER: "db1" }, []],
    ["another flag", env, ["--cluster", "db2"]],
  ])("does not answer a call with %s", async (_what, callEnv, flags) => {
    await archived(id(["wal-push"]));
    expect(launch(["wal-push", ...flags, `pg_wal/${SEGMENT}`], callEnv)).toBe(1);
  });

  it("does not answer when the file changed after it was stored, or there is no marker", async () => {
    await archived(id(["wal-push"]), { fileAt: 30 });
    expect(launch(["wal-push", `pg_wal/${SEGMENT}`], env)).toBe(1);
    await archived(id(["wal-push"]));
    await rm(join(dir, "pg_wal", ".pgha", "archive", "ok", SEGMENT));
    expect(launch(["wal-push", `pg_wal/${SEGMENT}`], env)).toBe(1);
  });

  it("does not answer when the config file is newer than the recorded id", async () => {
    const config = join(dir, "pgha.json");
    await writeFile(config, "{}");
    await utimes(config, at(8), at(8));
    await archived(id(["wal-push", "--config", config], env, "{}"));
    expect(launch(["wal-push", "--config", config, `pg_wal/${SEGMENT}`], env)).toBe(1);
    await archived(id(["wal-push", "--config", config], env, "{}"), { idAt: 9 });
    expect(launch(["wal-push", "--config", config, `pg_wal/${SEGMENT}`], env)).toBe(0);
  });

  it("does not answer when the config file changed, whatever its modification time", async () => {
    // An operator puts a config prepared earlier in place (cp -p, rsync -a, mv): other
    // settings, an older time. The markers are the old repository's.
    const config = join(dir, "pgha.json");
    const before = '{"repo": "/srv/old", "archive-async": "true"}\n';
    await writeFile(config, before);
    await utimes(config, at(8), at(8));
    await archived(id(["wal-push", "--config", config], env, before), { idAt: 9 });
    expect(launch(["wal-push", "--config", config, `pg_wal/${SEGMENT}`], env)).toBe(0);
    await writeFile(config, '{"repo": "/srv/new", "archive-async": "true"}\n');
    await utimes(config, at(1), at(1));
    expect(launch(["wal-push", "--config", config, `pg_wal/${SEGMENT}`], env)).toBe(1);
    expect(launch(["wal-push", `--config=${config}`, `pg_wal/${SEGMENT}`], env)).toBe(1);
  });

  it("reads the config file the way configIdPart does (lines, no final newline, CRLF, backslashes)", async () => {
    const config = join(dir, "pgha.json");
    for (const text of ["{}", "{}\n", '{\n  "repo": "/a\\b" \n}', "{\r\n}\r\n", "{\n\n}\n\n"]) {
      await writeFile(config, text);
      await utimes(config, at(1), at(1));
      await archived(id(["wal-push"], { ...env, PGHA_CONFIG: config }, text), { idAt: 9 });
      expect(launch(["wal-push", `pg_wal/${SEGMENT}`], { ...env, PGHA_CONFIG: config }), text).toBe(
        0,
      );
    }
  });

  it("does not answer for another file of the same name (the marker is about pg_wal's)", async () => {
    await archived(id(["wal-push"]));
    await mkdir(join(dir, "elsewhere"));
    await writeFile(join(dir, "elsewhere", SEGMENT), "other wal");
    await utimes(join(dir, "elsewhere", SEGMENT), at(10), at(10));
    expect(launch(["wal-push", `elsewhere/${SEGMENT}`], env)).toBe(1);
    expect(launch(["wal-push", `./pg_wal/${SEGMENT}`], env)).toBe(0);
  });

  it("answers segments only, and nothing else", async () => {
    await archived(id(["wal-push"]));
    expect(launch(["wal-push", "pg_wal/00000002.history"], env)).toBe(1);
    expect(launch(["wal-push", "--help"], env)).toBe(1);
    expect(launch(["--version"], env)).toBe(1);
  });
});

describe("bin/pgha wal-fetch fast path", () => {
  it("renames a prefetched segment onto %p", async () => {
    const spool = join(dir, "pg_wal", ".pgha", "prefetch");
    await writeFile(join(spool, SEGMENT), "verified wal");
    await writeFile(
      join(spool, "id"),
      `${callId(["wal-fetch"], { PGHA_CONFIG: join(dir, "none.json") }, undefined)}\n`,
    );
    expect(launch(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"])).toBe(0);
    expect(await readFile(join(dir, "pg_wal", "RECOVERYXLOG"), "utf8")).toBe("verified wal");
    // Delivered once: the next call for it is Node.js's.
    expect(launch(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"])).toBe(1);
  });

  it.skipIf(process.getuid?.() !== 0)("does not deliver a file another user left", async () => {
    const spool = join(dir, "pg_wal", ".pgha", "prefetch");
    await writeFile(join(spool, SEGMENT), "verified wal");
    await chown(join(spool, SEGMENT), 4242, 4242);
    await writeFile(
      join(spool, "id"),
      `${callId(["wal-fetch"], { PGHA_CONFIG: join(dir, "none.json") }, undefined)}\n`,
    );
    expect(launch(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"])).toBe(1);
  });

  it("does not deliver under another id", async () => {
    const spool = join(dir, "pg_wal", ".pgha", "prefetch");
    await writeFile(join(spool, SEGMENT), "verified wal");
    await writeFile(join(spool, "id"), `${callId(["wal-fetch", "--repo", "/a"], {}, undefined)}\n`);
    expect(launch(["wal-fetch", "--repo", "/b", SEGMENT, "pg_wal/RECOVERYXLOG"])).toBe(1);
  });
});

describe("bin/pgha without Node.js", () => {
  it("exits as a broken install does: 126 for wal-fetch in archive recovery, 70 for a standby or wal-push", async () => {
    const none = { PGHA_NODE: join(dir, "no-node") };
    expect(launch(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"], none)).toBe(126);
    expect(launch(["wal-push", `pg_wal/${SEGMENT}`], none)).toBe(70);
    await writeFile(join(dir, "standby.signal"), "");
    expect(launch(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"], none)).toBe(70);
  });
});

describe("bin/pgha.mjs when the command never settles", () => {
  it("exits as an internal error (70; 126 for wal-fetch in archive recovery), never Node.js's 13", async () => {
    // A copy of the entry beside a CLI whose run never settles and holds nothing open.
    await mkdir(join(dir, "bin"));
    await mkdir(join(dir, "dist", "src", "cli"), { recursive: true });
    await writeFile(
      join(dir, "bin", "pgha.mjs"),
      await readFile(join(PGHA_BIN, "..", "pgha.mjs"), "utf8"),
    );
    await writeFile(
      join(dir, "dist", "src", "cli", "run.js"),
      "export const run = () => new Promise(() => {});\nexport const fatalExitCode = async () => 70;\n",
    );
    const run = (args: string[]) =>
      spawnSync(process.execPath, [join(dir, "bin", "pgha.mjs"), ...args], {
        cwd: dir,
        encoding: "utf8",
      });
    const list = run(["backup", "list"]);
    expect(list.status).toBe(70);
    expect(list.stderr).toContain("pgha: internal error: the command stopped without finishing");
    expect(run(["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"]).status).toBe(126);
  });
});

describe("bin/pgha's id", () => {
  it("lists the environment CALL_ID_ENV lists, in its order", async () => {
    const script = await readFile(PGHA_BIN, "utf8");
    const line = /id="\$id\|env\|(.*)"$/m.exec(script)?.[1];
    expect(line, "the env line of bin/pgha").toBeDefined();
    const names = [...(line ?? "").matchAll(/\$\{([A-Z0-9_]+)-\}/g)].map((m) => m[1]);
    expect(names, "npm run docs rewrites bin/pgha's env line from CALL_ID_ENV").toEqual([
      ...CALL_ID_ENV,
    ]);
  });
});

describe("node's flags", () => {
  it("the launcher and the scheduler's jobs give each command the same flags", async () => {
    const script = await readFile(PGHA_BIN, "utf8");
    const launcher: Record<string, string[]> = {};
    for (const m of script.matchAll(/^\s*([a-z |]+)\) exec "\$node" ((?:--\S+ )+)"\$\{here/gm))
      for (const command of (m[1] ?? "").split("|"))
        launcher[command.trim()] = (m[2] ?? "").trim().split(" ");
    expect(launcher).toEqual(NODE_FLAGS);
    expect(nodeFlagsFor(["backup", "--config", "/etc/pgha.json", "--type", "incr"])).toEqual(
      NODE_FLAGS.backup,
    );
    expect(nodeFlagsFor(["drill", "run"])).toEqual(NODE_FLAGS.drill);
    expect(nodeFlagsFor(["prune", "--confirm"])).toEqual([]);
    expect(nodeFlagsFor(["toString"])).toEqual([]);
  });
});

/** The launcher in the background: its exit code and how long it took. */
function launchAsync(args: string[], env: Record<string, string> = {}) {
  const started = Date.now();
  const child = spawn(PGHA_BIN, args, {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PGHA_NODE: "false",
      PGHA_CONFIG: join(dir, "none.json"),
      ...env,
    },
  });
  return new Promise<{ code: number | null; ms: number }>((resolve) =>
    child.on("close", (code) => resolve({ code, ms: Date.now() - started })),
  );
}

describe("bin/pgha waits for a running archiver or prefetcher", () => {
  const archive = () => join(dir, "pg_wal", ".pgha", "archive");
  const prefetch = () => join(dir, "pg_wal", ".pgha", "prefetch");
  const push = ["wal-push", `pg_wal/${SEGMENT}`];
  const fetch = ["wal-fetch", SEGMENT, "pg_wal/RECOVERYXLOG"];
  const id = (args: string[]) => callId(args, { PGHA_CONFIG: join(dir, "none.json") }, undefined);

  async function readyAndRunning(pid: number): Promise<void> {
    await mkdir(join(dir, "pg_wal", "archive_status"), { recursive: true });
    await mkdir(join(archive(), "want"), { recursive: true });
    await writeFile(join(dir, "pg_wal", SEGMENT), "wal");
    await writeFile(join(dir, "pg_wal", "archive_status", `${SEGMENT}.ready`), "");
    await writeFile(join(archive(), "id"), `${id(["wal-push"])}\n`);
    await writeFile(join(archive(), "pid"), `${pid}\n`);
  }

  it("wal-push waits for the ok marker of a file the live archiver is storing", async () => {
    await readyAndRunning(process.pid);
    const running = launchAsync(push);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(archive(), "ok", SEGMENT), "{}");
    const { code, ms } = await running;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
    expect(existsSync(join(archive(), "want", SEGMENT)), "it said it waits").toBe(true);
  });

  it("wal-push leaves to Node.js what the archiver failed, and waits for no dead archiver", async () => {
    await readyAndRunning(process.pid);
    await mkdir(join(archive(), "error"), { recursive: true });
    const failing = launchAsync(push);
    await new Promise((r) => setTimeout(r, 200));
    await writeFile(join(archive(), "error", SEGMENT), "{}");
    expect((await failing).code).toBe(1);
    await rm(join(archive(), "error", SEGMENT));
    await writeFile(join(archive(), "pid"), "999999999\n");
    const dead = await launchAsync(push);
    expect(dead.code).toBe(1);
    expect(dead.ms).toBeLessThan(1000);
  });

  it("wal-fetch waits for a segment in the live prefetcher's window, and only then", async () => {
    await writeFile(join(prefetch(), "id"), `${id(["wal-fetch"])}\n`);
    await writeFile(join(prefetch(), "pid"), `${process.pid}\n`);
    await writeFile(join(prefetch(), "window"), `000000010000000A000000FE\n${SEGMENT}\n`);
    const waiting = launchAsync(fetch);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(prefetch(), SEGMENT), "verified wal");
    expect((await waiting).code).toBe(0);
    expect(await readFile(join(dir, "pg_wal", "RECOVERYXLOG"), "utf8")).toBe("verified wal");
    await writeFile(join(prefetch(), "window"), "000000010000000B00000001\n");
    const outside = await launchAsync(fetch);
    expect(outside.code).toBe(1);
    expect(outside.ms).toBeLessThan(1000);
  });
});
