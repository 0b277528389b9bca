/** pgha restore find: the transaction to stop just before, from the archived WAL. */
import { accessSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import type { OptionsOf } from "../../config/flags.js";
import { UsageError } from "../../errors.js";
import { FetchThread } from "../../find/fetch-thread.js";
import {
  type FindRequest,
  findInArchive,
  type LocatedFinding,
} from "../../find/find-in-archive.js";
import { describeQuery, parseRelationName } from "../../find/relation-name.js";
import { openStore } from "../../storage/open-store.js";
import { loadContext } from "../context.js";
import { renderTable } from "../table.js";

const WORDS = { drop: "dropped", truncate: "truncated", delete: "deleted rows from" } as const;

/** The one kind of finding asked for, and the table, from --dropped / --truncated / --deleted-from. */
export function findRequestFrom(opts: OptionsOf<"restore find">): FindRequest {
  const given = (
    [
      ["drop", "--dropped", opts.dropped],
      ["truncate", "--truncated", opts.truncated],
      ["delete", "--deleted-from", opts.deletedFrom],
    ] as const
  ).filter(([, , value]) => value !== undefined);
  const [one] = given;
  if (given.length !== 1 || one === undefined)
    throw new UsageError(
      given.length === 0
        ? "say what to find"
        : "give one of --dropped, --truncated, --deleted-from",
      "for example pgha restore find --dropped public.orders",
    );
  const [kind, flag, value] = one;
  if (opts.since !== undefined && opts.until !== undefined && opts.since > opts.until)
    throw new UsageError(
      "--since is after --until",
      "--since is the earliest commit time to report, --until the latest",
    );
  return {
    kind,
    query: parseRelationName(value ?? "", flag),
    since: opts.since,
    until: opts.until,
    minRows: opts.minRows,
  };
}

/**
 * Where the segments being read go: TMPDIR when set, else /dev/shm (memory: the segments
 * are read once, at most MAX_SEGMENTS_ON_DISK at a time), else the system's temporary directory.
 */
function scratchRoot(): string {
  if (process.env.TMPDIR) return tmpdir();
  try {
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

/** The repository settings given on the command line, repeated in the printed commands. */
function settingArgs(opts: OptionsOf<"restore find">): string {
  const s = opts.settings as Record<string, unknown>;
  const args: string[] = [];
  for (const [key, flag] of [
    ["config", "--config"],
    ["repo", "--repo"],
    ["cluster", "--cluster"],
  ] as const) {
    const value = s[key];
    if (typeof value === "string") args.push(flag, shellQuote(value));
  }
  return args.length > 0 ? ` ${args.join(" ")}` : "";
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The commands that stop just before a finding's commit. The restore promotes there: a
 * copy paused instead could not read the table, since the replayed DROP or TRUNCATE holds
 * its lock until promotion ends that transaction.
 */
export function commandsFor(
  finding: LocatedFinding,
  settings: string,
): { restore: string; drill: string } {
  const target = `${finding.backup === undefined ? "" : ` --backup ${finding.backup}`} --target-xid ${finding.xid} --target-exclusive`;
  return {
    restore: `pgha restore${settings} --pgdata <new data directory>${target} --target-action promote`,
    drill: `pgha drill${settings}${target}`,
  };
}

export async function restoreFindCommand(opts: OptionsOf<"restore find">): Promise<number> {
  const request = findRequestFrom(opts);
  const { config, log } = loadContext(opts);
  const store = await openStore(config, log);
  const thread = new FetchThread(config);
  let result: Awaited<ReturnType<typeof findInArchive>>;
  try {
    result = await findInArchive(
      {
        store,
        cluster: config.cluster,
        log,
        pgBin: config.pgBin,
        tempRoot: scratchRoot(),
        fetchSegment: (name, dest) => thread.fetch(name, dest),
      },
      request,
    );
  } finally {
    await thread.close();
  }
  const settings = settingArgs(opts);
  const what = `${WORDS[request.kind]} ${describeQuery(request.query)}`;
  const scanned = `WAL ${result.scanned.first} .. ${result.scanned.last} (${result.scanned.segments} segments, from ${result.scanned.from}) after backup ${result.backup.id}`;
  if (opts.json === true) {
    const json = {
      backup: result.backup.id,
      kind: request.kind,
      relation: describeQuery(request.query),
      scanned: result.scanned,
      findings: result.findings.map((f) => ({
        time: f.time,
        xid: f.xid,
        lsn: f.lsn,
        kind: f.kind,
        database: f.database,
        relation: f.relation,
        oid: f.oid,
        ...(f.rows !== undefined ? { rows: f.rows } : {}),
        backup: f.backup ?? null,
        commands: f.backup === undefined ? null : commandsFor(f, settings),
      })),
    };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  if (result.findings.length === 0) {
    process.stdout.write(`no transaction ${what} in the ${scanned}\n`);
    return 0;
  }
  const n = result.findings.length;
  process.stdout.write(
    `${n} transaction${n === 1 ? "" : "s"} ${what}, newest first (${scanned}):\n`,
  );
  process.stdout.write(
    renderTable(
      ["commit time", "xid", "commit LSN", "kind", "relation"],
      result.findings.map((f) => [
        f.time,
        String(f.xid),
        f.lsn,
        `${f.kind.toUpperCase()}${f.rows !== undefined ? ` (${f.rows} rows)` : ""}`,
        `${f.database}: ${f.relation}`,
      ]),
    ),
  );
  process.stdout.write("to stop just before each:\n");
  for (const f of result.findings) {
    if (f.backup === undefined) {
      process.stdout.write(
        `  xid ${f.xid}: no backup ended before it, no restore can stop just before it\n`,
      );
      continue;
    }
    const c = commandsFor(f, settings);
    process.stdout.write(`  xid ${f.xid}: ${c.restore}\n  xid ${f.xid}: ${c.drill}\n`);
  }
  return 0;
}
