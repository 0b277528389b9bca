/** pgha dump, dump list, dump info, dump restore, dump fetch: thin layers over src/backup. */
import { takeDumpSet } from "../../backup/dump.js";
import {
  checkDatabaseRestore,
  fetchDumpSet,
  restoreDatabase,
  restoreGlobals,
} from "../../backup/dump-restore.js";
import type { OptionsOf } from "../../config/flags.js";
import { UsageError } from "../../errors.js";
import { findClientTools, libpqEnv } from "../../pg/client-tools.js";
import { PgServer } from "../../pg/server.js";
import {
  type DumpManifest,
  listDumpIds,
  readDumpManifest,
  resolveDump,
} from "../../repository/dump-manifest.js";
import { dumpPinKey } from "../../repository/keys.js";
import { withPin } from "../../repository/pin.js";
import { openStore } from "../../storage/open-store.js";
import { type Catalog, openCatalog, printCatalogInfo, printCatalogList } from "../catalog.js";
import { loadContext } from "../context.js";
import { formatBytes } from "../table.js";

export async function dumpCreateCommand(opts: OptionsOf<"dump create">): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const server = await PgServer.connect(config.pgConn);
  try {
    const tools = await findClientTools(config.pgBin, (await server.basics()).versionNum);
    const manifest = await takeDumpSet(
      {
        store,
        cluster: config.cluster,
        compression: config.compress,
        server,
        tools,
        env: libpqEnv(config.pgConn),
        log,
        now: () => new Date(),
      },
      {
        databases: opts.databases,
        noRolePasswords: !opts.rolePasswords,
        label: opts.label,
        pin: opts.pin,
      },
    );
    process.stdout.write(`${manifest.id}\n`);
    return 0;
  } finally {
    await server.close();
  }
}

export function summarizeDump(m: DumpManifest) {
  return {
    id: m.id,
    cluster: m.cluster,
    label: m.label,
    pinned: m.pinned,
    startTime: m.startTime,
    stopTime: m.stopTime,
    pgVersion: m.pgVersion,
    systemIdentifier: m.systemIdentifier,
    noRolePasswords: m.noRolePasswords,
    globals: {
      rawBytes: m.globals.rawSize,
      storedBytes: m.globals.storedSize,
      sha256: m.globals.sha256,
    },
    databases: m.databases.map((d) => ({
      name: d.name,
      owner: d.owner,
      rawBytes: d.rawSize,
      storedBytes: d.storedSize,
      sha256: d.sha256,
    })),
  };
}

const DUMP_SETS: Catalog<DumpManifest> = {
  noun: "dump set",
  plural: "dump sets",
  listIds: listDumpIds,
  // `pinned` as `dump pin|unpin` left it (repository/pin.ts).
  read: async (store, cluster, id) =>
    withPin(store, dumpPinKey(cluster, id), await readDumpManifest(store, cluster, id)),
  resolve: async (store, cluster, ref) => {
    const m = await resolveDump(store, cluster, ref);
    return withPin(store, dumpPinKey(cluster, m.id), m);
  },
  summarize: summarizeDump,
  listColumns: ["id", "started", "databases", "stored", "label"],
  listRow: (m) => [
    m.id + (m.pinned ? " (pinned)" : ""),
    m.startTime.replace(/\.\d+Z$/, "Z"),
    m.databases.map((d) => d.name).join(", "),
    formatBytes(m.globals.storedSize + m.databases.reduce((s, d) => s + d.storedSize, 0)),
    m.label ?? "",
  ],
  infoRows: (m) => [
    ["id", m.id],
    ["cluster", `${m.cluster} (system ${m.systemIdentifier}, PostgreSQL ${m.pgVersion})`],
    ["label", m.label ?? ""],
    ["pinned", m.pinned ? "yes" : "no"],
    ["taken", `${m.startTime} .. ${m.stopTime}`],
    [
      "globals",
      `${formatBytes(m.globals.rawSize)}${m.noRolePasswords ? " (no role passwords)" : ""}`,
    ],
    ...m.databases.map((d): [string, string] => [
      `database ${d.name}`,
      `owner ${d.owner}, ${formatBytes(d.rawSize)} stored as ${formatBytes(d.storedSize)}`,
    ]),
  ],
};

export async function dumpListCommand(opts: OptionsOf<"dump list">): Promise<number> {
  return printCatalogList(DUMP_SETS, await openCatalog(opts));
}

export async function dumpInfoCommand(ref: string, opts: OptionsOf<"dump info">): Promise<number> {
  return printCatalogInfo(DUMP_SETS, await openCatalog(opts), ref);
}

export async function dumpRestoreCommand(
  ref: string,
  opts: OptionsOf<"dump restore">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  const { db, toDb } = opts;
  if (!db && !opts.globals) {
    throw new UsageError(
      "nothing to restore",
      "give --db NAME (a database of the dump set), --globals, or both",
    );
  }
  if (toDb && !db)
    throw new UsageError(
      "--to-db needs --db",
      "--db names the database in the dump set, --to-db the new name",
    );
  const store = await openStore(config, log);
  const manifest = await resolveDump(store, config.cluster, ref);
  const server = await PgServer.connect(config.pgConn, "postgres");
  try {
    const tools = await findClientTools(config.pgBin, (await server.basics()).versionNum);
    const deps = { store, server, tools, env: libpqEnv(config.pgConn), log };
    // Refusals first: a restore that cannot happen must not have changed the globals.
    if (db) await checkDatabaseRestore(deps, manifest, db, toDb);
    if (opts.globals) await restoreGlobals(deps, manifest);
    if (db) process.stdout.write(`${await restoreDatabase(deps, manifest, db, toDb)}\n`);
    return 0;
  } finally {
    await server.close();
  }
}

export async function dumpFetchCommand(
  ref: string,
  dir: string,
  opts: OptionsOf<"dump fetch">,
): Promise<number> {
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const manifest = await resolveDump(store, config.cluster, ref);
  for (const path of await fetchDumpSet(store, manifest, dir)) process.stdout.write(`${path}\n`);
  return 0;
}
