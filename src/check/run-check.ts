/**
 * `pgha check`'s steps (steps.ts says their order, prerequisites and exit codes), run
 * against the real repository and server: each ends as a StepResult, never as a throw.
 *
 * - config: the settings resolve (flags > environment > config file > defaults);
 * - storage: a probe object (probes/check-<random>) is written, read back, listed and
 *   deleted: reachability and every permission pgha needs;
 * - conditional-writes: whether the store refuses a conditional write over an existing
 *   object (the probe wal-push makes, keys.ts conditionalWriteProbeKey); either answer
 *   passes, it decides the WAL layout (FORMAT.md);
 * - server: a connection (--pg-conn, the libpq variables, or --pgdata: the server running
 *   there; none named: the server steps are skipped);
 * - identity: the repository's record of the cluster is this server's;
 * - archive-mode, archive-command: the server archives with `pgha wal-push %p` into the
 *   same repository and cluster, resolved as wal-push would (its flags, the variables its
 *   command line sets, the server's environment where readable, its config file);
 * - wal-switch: a segment closed with pg_switch_wal() arrives within the timeout.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/load.js";
import { readConfigFile, resolveConfig } from "../config/load.js";
import { PghaError } from "../errors.js";
import type { Logger } from "../log.js";
import { PgServer, type ServerFacts } from "../pg/server.js";
import { readIdentity } from "../repository/identity.js";
import { checkProbeKey, conditionalWriteProbeKey } from "../repository/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openStore } from "../storage/open-store.js";
import { readAll } from "../storage/streams.js";
import { parseWalFileName } from "../wal/names.js";
import { listWalVersions } from "../wal/versions.js";
import {
  archiveCallEnv,
  archiveTargetOf,
  compareArchiveTargets,
  parseArchiveCommand,
} from "./archive-command.js";
import { connInfoOfDataDirectory } from "./local-server.js";
import {
  blockedBy,
  CHECK_STEPS,
  type CheckStepName,
  failed,
  passed,
  type StepResult,
  skipped,
  skippedFor,
} from "./steps.js";

export interface CheckInput {
  /** Resolves the configuration and its logger; throws (UsageError) on a bad one. */
  readonly load: () => { config: Config; log: Logger };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How long the switched segment may take to arrive. */
  readonly timeoutMs: number;
  /** Called with each result as it is known (a terminal shows progress). */
  readonly onResult?: (result: StepResult) => void;
}

/** The libpq variables that name a server (besides --pg-conn). */
const LIBPQ_SERVER_VARIABLES = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE", "PGDATABASE"];

interface State {
  config?: Config;
  log?: Logger;
  store?: ObjectStore;
  server?: PgServer;
  facts?: ServerFacts;
}

type StepRun = (state: State, input: CheckInput) => Promise<StepResult>;

const why = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const hintOf = (error: unknown): string | undefined =>
  error instanceof PghaError ? error.hint : undefined;

/** A failure from a thrown error: its own exit code when it is one of pgha's. */
function failedWith(step: CheckStepName, lead: string, error: unknown, hint?: string): StepResult {
  const exit = error instanceof PghaError ? error.exit : undefined;
  return failed(step, `${lead}${why(error)}`, hintOf(error) ?? hint, exit);
}

const STEPS: { readonly [S in CheckStepName]: StepRun } = {
  config: async (state, input) => {
    try {
      const { config, log } = input.load();
      state.config = config;
      state.log = log;
    } catch (error) {
      return failedWith("config", "", error);
    }
    const target = archiveTargetOf(state.config);
    const file = state.config.configFile ? ` (config file ${state.config.configFile})` : "";
    return passed("config", `repository ${target.repository}, cluster '${target.cluster}'${file}`);
  },

  storage: async (state) => {
    const config = state.config as Config;
    const store = await openStore(config, state.log as Logger).catch((error: unknown) => error);
    if (!isStore(store)) return failedWith("storage", "cannot open the repository: ", store);
    state.store = store;
    const key = checkProbeKey(config.cluster, `${process.pid}-${randomBytes(6).toString("hex")}`);
    const body = Buffer.from(`pgha check probe ${new Date().toISOString()}\n`);
    const at = `${store.url}/${key}`;
    const hint =
      "the repository must be readable and writable, and allow listing and deleting, for the user running pgha (and the server's user, which runs archive_command)";
    let doing = "write";
    try {
      await store.put(key, body);
      doing = "read";
      const { body: stream } = await store.get(key);
      const read = await readAll(stream);
      if (!read.equals(body)) {
        return failed(
          "storage",
          `${at} read back other bytes than written (${read.length} bytes, ${body.length} written)`,
          "the store does not return what it stored: check its health",
          "integrity",
        );
      }
      doing = "list";
      let listed = false;
      for await (const entry of store.list(key)) if (entry.key === key) listed = true;
      if (!listed) return failed("storage", `${at} was written but is not listed`, hint);
      doing = "delete";
      await store.delete(key);
      if ((await store.head(key)) !== undefined) {
        return failed("storage", `${at} is still there after a delete`, hint);
      }
    } catch (error) {
      return failedWith("storage", `cannot ${doing} the probe object: `, error, hint);
    }
    return passed("storage", `${store.url}: wrote, read back, listed and deleted a probe object`);
  },

  "conditional-writes": async (state) => {
    const store = state.store as ObjectStore;
    const config = state.config as Config;
    if (store.capabilities.atomicIfAbsent === true) {
      return passed(
        "conditional-writes",
        "honoured: a write refuses an existing name; wal-push stores WAL under plain keys",
      );
    }
    if (!store.learnCapabilities) {
      return passed(
        "conditional-writes",
        "not known: wal-push stores WAL under content-addressed keys",
      );
    }
    const probe = conditionalWriteProbeKey(config.cluster);
    let learned: boolean | "unknown" | undefined;
    try {
      learned = (await store.learnCapabilities(probe)).atomicIfAbsent;
    } catch (error) {
      return failedWith("conditional-writes", `cannot probe ${store.url}/${probe}: `, error);
    }
    return learned === true
      ? passed(
          "conditional-writes",
          "honoured: the server refuses If-None-Match: * over an existing object; wal-push stores WAL under plain keys",
        )
      : passed(
          "conditional-writes",
          "not honoured: the server ignores If-None-Match: *; wal-push stores WAL under content-addressed keys (safe, FORMAT.md)",
        );
  },

  server: async (state, input) => {
    const config = state.config as Config;
    const libpq = LIBPQ_SERVER_VARIABLES.some((name) => input.env[name]);
    if (config.pgConn === undefined && !libpq && config.pgdata === undefined) {
      return skipped(
        "server",
        "no server named: the server, identity, archive and WAL steps did not run",
        "give --pg-conn (PGHA_PG_CONN), the libpq variables (PGHOST, PGPORT, ...) or --pgdata of the running server to check archiving too",
      );
    }
    try {
      // --pgdata alone: the server that runs there, found through its postmaster.pid.
      const conninfo =
        config.pgConn === undefined && !input.env.PGHOST && !input.env.PGHOSTADDR && config.pgdata
          ? await connInfoOfDataDirectory(config.pgdata, input.env)
          : config.pgConn;
      state.server = await PgServer.connect(conninfo);
      state.facts = await state.server.facts();
    } catch (error) {
      return failedWith(
        "server",
        "",
        error,
        "pgha check needs a superuser or a role with pg_read_all_settings and pg_switch_wal rights",
      );
    }
    const f = state.facts;
    return passed(
      "server",
      `PostgreSQL ${f.version}, ${f.inRecovery ? "a standby" : "a primary"}, system identifier ${f.systemIdentifier}, data directory ${f.dataDirectory}`,
    );
  },

  identity: async (state) => {
    const store = state.store as ObjectStore;
    const config = state.config as Config;
    const facts = state.facts as ServerFacts;
    let recorded: Awaited<ReturnType<typeof readIdentity>>;
    try {
      recorded = await readIdentity(store, config.cluster);
    } catch (error) {
      return failedWith("identity", "", error);
    }
    if (recorded === undefined) {
      return passed(
        "identity",
        `cluster '${config.cluster}' has no WAL yet: the first segment archived records this server (system identifier ${facts.systemIdentifier})`,
      );
    }
    if (
      recorded.systemIdentifier !== facts.systemIdentifier ||
      recorded.walSegmentSize !== facts.walSegmentSize
    ) {
      return failed(
        "identity",
        `cluster '${config.cluster}' in ${store.url} is system ${recorded.systemIdentifier} with ${recorded.walSegmentSize}-byte segments, this server is system ${facts.systemIdentifier} with ${facts.walSegmentSize}-byte segments: wal-push refuses its WAL`,
        "each cluster needs its own --cluster name (PGHA_CLUSTER); after initdb or pg_upgrade a cluster is a new cluster",
      );
    }
    return passed(
      "identity",
      `cluster '${config.cluster}' in the repository is this server (system identifier ${facts.systemIdentifier})`,
    );
  },

  "archive-mode": async (state) => {
    const facts = state.facts as ServerFacts;
    if (facts.archiveMode === "off") {
      return failed(
        "archive-mode",
        "archive_mode is off: the server archives no WAL",
        "set archive_mode = on in postgresql.conf and restart the server",
      );
    }
    const standby =
      facts.inRecovery && facts.archiveMode !== "always"
        ? " (a standby archives only with always; this one will once promoted)"
        : "";
    return passed("archive-mode", `archive_mode is ${facts.archiveMode}${standby}`);
  },

  "archive-command": async (state) => checkArchiveCommand(state),

  "wal-switch": async (state, input) => {
    const facts = state.facts as ServerFacts;
    if (facts.inRecovery) {
      return skipped("wal-switch", "the server is a standby: pg_switch_wal() runs on the primary");
    }
    return switchAndWait(state, input.timeoutMs);
  },
};

function isStore(value: unknown): value is ObjectStore {
  return typeof (value as ObjectStore | undefined)?.put === "function";
}

const SET_ARCHIVE_COMMAND =
  "set archive_command = 'pgha wal-push %p' with the repository and cluster of this check (flags, PGHA_* variables or the config file) and reload the server";

async function checkArchiveCommand(state: State): Promise<StepResult> {
  const config = state.config as Config;
  const facts = state.facts as ServerFacts;
  const step = "archive-command";
  if (facts.archiveLibrary !== "") {
    return failed(
      step,
      `archive_library is '${facts.archiveLibrary}': PostgreSQL does not run archive_command`,
      `reset archive_library and ${SET_ARCHIVE_COMMAND}`,
    );
  }
  const call = parseArchiveCommand(facts.archiveCommand);
  if (call.kind === "other") {
    return failed(step, `${call.reason}: '${facts.archiveCommand}'`, SET_ARCHIVE_COMMAND);
  }
  if (call.problems.length > 0) {
    return failed(
      step,
      `'${facts.archiveCommand}': ${call.problems.join("; ")}`,
      SET_ARCHIVE_COMMAND,
    );
  }
  const serverEnv = await readServerEnvironment(facts.dataDirectory);
  const env = archiveCallEnv(call, serverEnv);
  let theirs: Config;
  try {
    const { config: configFlag, ...flags } = call.flags;
    const file = readConfigFile(configFlag, env as Record<string, string | undefined>, existsSync);
    theirs = resolveConfig({ flags, env, file });
  } catch (error) {
    return failedWith(step, "archive_command's pgha settings do not resolve: ", error);
  }
  const notes = [
    ...call.unknowns,
    ...(serverEnv === undefined
      ? [
          "the server's environment could not be read (run check on the server's host as root or its user): PGHA_* variables it sets were not taken into account",
        ]
      : []),
  ];
  const own = archiveTargetOf(config);
  const target = archiveTargetOf(theirs);
  const differences = compareArchiveTargets(own, target);
  if (differences.length > 0) {
    return failed(step, differences.join("; "), [SET_ARCHIVE_COMMAND, ...notes].join("; "));
  }
  const from = theirs.configFile ? ` (config file ${theirs.configFile})` : "";
  const result = passed(
    step,
    `'${facts.archiveCommand}' stores WAL in ${target.repository}, cluster '${target.cluster}'${from}`,
  );
  return notes.length > 0 ? { ...result, hint: notes.join("; ") } : result;
}

/**
 * The environment archive_command inherits: the postmaster's (/proc/<pid>/environ, the pid
 * from postmaster.pid), or undefined where it cannot be read (another host, another user).
 */
async function readServerEnvironment(
  dataDirectory: string,
): Promise<Record<string, string> | undefined> {
  try {
    const pid = (await readFile(join(dataDirectory, "postmaster.pid"), "utf8")).split("\n")[0];
    if (!pid || !/^\d+$/.test(pid.trim())) return undefined;
    const text = await readFile(`/proc/${pid.trim()}/environ`, "utf8");
    const env: Record<string, string> = {};
    for (const entry of text.split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return env;
  } catch {
    return undefined;
  }
}

async function switchAndWait(state: State, timeoutMs: number): Promise<StepResult> {
  const server = state.server as PgServer;
  const store = state.store as ObjectStore;
  const config = state.config as Config;
  const facts = state.facts as ServerFacts;
  const step = "wal-switch";
  const old = facts.versionNum < 100_000;
  let name: string;
  try {
    // A restore point is WAL: the switch then closes a segment even on an idle server.
    await server.query("SELECT pg_create_restore_point('pgha check')");
    const [row] = await server.query<{ name: string }>(
      old
        ? "SELECT pg_xlogfile_name(pg_switch_xlog()) AS name"
        : "SELECT pg_walfile_name(pg_switch_wal()) AS name",
    );
    name = String(row?.name);
  } catch (error) {
    return failedWith(
      step,
      "cannot switch WAL: ",
      error,
      "pgha check needs a superuser, or a role granted EXECUTE on pg_switch_wal and pg_create_restore_point",
    );
  }
  const file = parseWalFileName(name);
  if (file === undefined)
    return failed(step, `the server named the segment '${name}'`, undefined, "postgres");
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    let versions: Awaited<ReturnType<typeof listWalVersions>>;
    try {
      versions = await listWalVersions(store, config.cluster, file);
    } catch (error) {
      return failedWith(step, `cannot list ${name} in ${store.url}: `, error);
    }
    if (versions.length > 0) {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const layout = versions.some((v) => v.sha256 === undefined) ? "plain" : "content-addressed";
      return passed(step, `${name} reached ${store.url} after ${seconds}s (${layout} key)`);
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, deadline - Date.now())));
  }
  return failed(
    step,
    `${name} did not reach ${store.url} within ${timeoutMs / 1000}s`,
    await archiverHint(server, name),
  );
}

/** What pg_stat_archiver says about the failure, for the hint. */
async function archiverHint(server: PgServer, name: string): Promise<string> {
  try {
    const [row] = await server.query<Record<string, string | null>>(
      `SELECT failed_count::text AS failed, last_failed_wal AS wal, last_failed_time::text AS at,
              last_archived_wal AS archived
         FROM pg_stat_archiver`,
    );
    if (row?.wal) {
      return `pg_stat_archiver: ${row.failed} failed attempts, the last on ${row.wal} at ${row.at}; the server log has wal-push's error`;
    }
    return `the archiver has not failed (last archived: ${row?.archived ?? "none"}): it may be behind on a backlog of .ready files before ${name}; run again with a longer --timeout`;
  } catch {
    return "the server log has wal-push's error";
  }
}

/** A step's result; one of pgha's errors it did not catch fails it (anything else is a bug). */
async function runStep(step: CheckStepName, state: State, input: CheckInput): Promise<StepResult> {
  try {
    return await STEPS[step](state, input);
  } catch (error) {
    if (!(error instanceof PghaError)) throw error;
    return failedWith(step, "", error);
  }
}

/** Runs every step in order; a step whose prerequisite did not pass is skipped. */
export async function runCheck(input: CheckInput): Promise<StepResult[]> {
  const state: State = {};
  const results: StepResult[] = [];
  try {
    for (const step of CHECK_STEPS) {
      const blocker = blockedBy(step, results);
      const result = blocker ? skippedFor(step, blocker) : await runStep(step, state, input);
      results.push(result);
      input.onResult?.(result);
    }
  } finally {
    await state.server?.close();
  }
  return results;
}
