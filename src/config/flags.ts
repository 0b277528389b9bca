/**
 * The command flags: what one run of a command takes beyond the settings (options.ts). They
 * have no environment variable and no config-file key. Each is declared once here: its
 * kind, parser, default, documentation and the commands that take it. The CLI builds its
 * flags from this table and hands each command typed values (OptionsOf<"restore run">);
 * `pgha options` and the README print it. Not loaded on the wal-push / wal-fetch hot path.
 */
import { UsageError } from "../errors.js";
import { parseTargetTime } from "../restore/target.js";
import { parseSample } from "../verify/sample.js";
import type { SettingFlags } from "./options.js";
import { parseChoice, parseDuration, ValueError } from "./values.js";

/** Every command, by the words after `pgha`. */
export type CommandName =
  | "wal-push"
  | "wal-fetch"
  | "archiver"
  | "prefetcher"
  | "backup create"
  | "backup list"
  | "backup info"
  | "backup fetch"
  | "backup pin"
  | "backup unpin"
  | "backup delete"
  | "dump create"
  | "dump list"
  | "dump info"
  | "dump restore"
  | "dump fetch"
  | "dump pin"
  | "dump unpin"
  | "dump delete"
  | "cluster list"
  | "cluster delete"
  | "retention simulate"
  | "prune"
  | "lock list"
  | "lock break"
  | "restore plan"
  | "restore run"
  | "restore find"
  | "standby"
  | "drill run"
  | "drill list"
  | "schedule run"
  | "schedule show"
  | "status"
  | "metrics"
  | "check"
  | "verify"
  | "repo rekey"
  | "key generate"
  | "options";

interface FlagBase {
  /** Flag name without dashes (`--no-` for negatable flags comes on top). */
  readonly name: string;
  readonly doc: string;
  readonly commands: readonly CommandName[];
  /** The doc for a command where the flag reads differently there. */
  readonly docs?: Partial<Record<CommandName, string>>;
}

/** `--fast`: true when given. */
export interface SwitchFlag extends FlagBase {
  readonly kind: "switch";
}

/** `--no-role-passwords` (doc is its help), with `--archive` beside it when `positiveDoc` is set. */
export interface NegatableFlag extends FlagBase {
  readonly kind: "negatable";
  readonly positiveDoc?: string;
  readonly default: boolean;
}

/**
 * `--count <n>`: parsed at the command line; a bad value is a UsageError naming the flag.
 * Without a parser the value is kept as written: the command (or the core) checks it.
 */
export interface ValueFlag<T> extends FlagBase {
  readonly kind: "value";
  readonly placeholder: string;
  readonly parse?: (raw: string) => T;
  /** Literal text run through parse (help shows the same text), or words plus a function. */
  readonly default?: string | { readonly text: string; readonly compute: () => T };
  /** The HINT line for a value that does not parse. */
  readonly hint?: string;
}

/** `--db <name>`, repeatable: the values in order, as written. */
export interface ListFlag extends FlagBase {
  readonly kind: "list";
  readonly placeholder: string;
}

export type FlagSpec = SwitchFlag | NegatableFlag | ValueFlag<unknown> | ListFlag;

function flag<const F extends FlagSpec>(spec: F): F {
  return spec;
}

/** Wraps a parser so its error reads like the one-line messages the CLI has always given. */
function described<T>(parse: (raw: string) => T, what: string): (raw: string) => T {
  return (raw) => {
    try {
      return parse(raw);
    } catch {
      throw new ValueError(`'${raw}' is not ${what}`);
    }
  };
}

const RESTORE = ["restore plan", "restore run"] as const;

/** host:port, [v6]:port: where an opt-in HTTP endpoint listens. */
export function parseListenAddress(raw: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ValueError(`'${raw}' is not host:port`);
  return { host: match[1] ?? match[2] ?? "", port };
}

/** In table order, which is the order of help and README. */
/** The doc and commands of a flag that backup create and dump create share. */
function ofBackupOrDumpSet(doc: (what: string) => string) {
  return {
    doc: doc("backup"),
    docs: { "dump create": doc("dump set") },
    commands: ["backup create", "dump create"],
  } as const;
}

/** --since / --until: an instant, in --target-time's grammar and words (relative times too). */
function parseInstant(raw: string): number {
  try {
    const target = parseTargetTime(raw, { now: new Date(), relativeTimes: true });
    return target.kind === "time" ? target.at : Number.NaN;
  } catch (error) {
    throw new ValueError((error as Error).message.replace(/^--target-time /, ""));
  }
}

export const FLAGS = {
  fast: flag({
    kind: "switch",
    name: "fast",
    doc: "request an immediate checkpoint instead of a spread one",
    commands: ["backup create"],
  }),
  type: flag({
    kind: "value",
    name: "type",
    placeholder: "<full|incr|diff>",
    doc: "full; incr: only what changed since the cluster's newest backup (its changed 8 KiB blocks and files); diff: only what changed since its newest full (a chain of two: the full and this one). A full instead, the log says why, when there is none, the timeline, system or version changed, the chain has --backup-max-incr increments, or a backup of the chain is gone, unreadable or failed its last verify (README: Incremental and differential backups)",
    parse: parseChoice(["full", "incr", "diff"] as const),
    default: "full",
    hint: "full, incr or diff",
    commands: ["backup create"],
  }),
  confirm: flag({
    kind: "switch",
    name: "confirm",
    doc: "delete what the plan says",
    docs: {
      "lock break": "remove the locks the plan shows",
      "cluster delete": "delete every object of the cluster",
      "repo rekey": "rewrite the objects the plan lists",
    },
    commands: [
      "prune",
      "lock break",
      "backup delete",
      "dump delete",
      "cluster delete",
      "repo rekey",
    ],
  }),
  allowShorterWindow: flag({
    kind: "switch",
    name: "allow-shorter-window",
    doc: "let the retention rules delete the backup the --pitr-window's oldest second needs (its base); the plan says what the window becomes",
    docs: {
      "backup delete":
        "delete the backup even when the --pitr-window needs it (its base, the only backup, or one whose loss shortens it)",
    },
    commands: ["retention simulate", "prune", "backup delete"],
  }),
  withDependents: flag({
    kind: "switch",
    name: "with-dependents",
    doc: "delete the incremental backups that need this backup together with it (newest first); without it such a backup is refused",
    commands: ["backup delete"],
  }),
  primaryConninfo: flag({
    kind: "value",
    name: "primary-conninfo",
    placeholder: "<conninfo>",
    doc: "how the standby reaches the primary (libpq conninfo); without it the standby follows the repository alone",
    commands: ["standby"],
  }),
  slot: flag({
    kind: "value",
    name: "slot",
    placeholder: "<name>",
    doc: "replication slot on the primary (primary_slot_name)",
    commands: ["standby"],
  }),
  delay: flag({
    kind: "value",
    name: "delay",
    placeholder: "<duration>",
    doc: "apply commits this late: a delayed standby (30s, 15m, 4h)",
    // Kept as written (the standby's summary repeats it); checked here.
    parse: (raw: string): string => {
      described(parseDuration, "a duration")(raw);
      return raw;
    },
    hint: "for example 30s, 15m or 4h",
    commands: ["standby"],
  }),
  databases: flag({
    kind: "list",
    name: "db",
    placeholder: "<name>",
    doc: "dump this database (repeatable; default: all)",
    commands: ["dump create"],
  }),
  rolePasswords: flag({
    kind: "negatable",
    name: "role-passwords",
    doc: "leave role passwords out of the globals (pg_dumpall --no-role-passwords)",
    default: true,
    commands: ["dump create"],
  }),
  db: flag({
    kind: "value",
    name: "db",
    placeholder: "<name>",
    doc: "the database of the dump set to restore",
    commands: ["dump restore"],
  }),
  toDb: flag({
    kind: "value",
    name: "to-db",
    placeholder: "<name>",
    doc: "restore it under this name instead",
    commands: ["dump restore"],
  }),
  globals: flag({
    kind: "switch",
    name: "globals",
    doc: "restore roles, memberships and tablespaces first",
    commands: ["dump restore"],
  }),
  tablespaceMap: flag({
    kind: "list",
    name: "tablespace-map",
    placeholder: "<name=dir>",
    doc: "restore a tablespace (by name or oid) into another directory; repeatable",
    commands: ["backup fetch", "restore plan", "restore run"],
  }),
  delta: flag({
    kind: "switch",
    name: "delta",
    doc: "restore into the existing data directory (and tablespaces) of a stopped server: files equal to the backup's are kept, differing ones rewritten (only their differing blocks where the backup has a block map), others removed",
    commands: ["restore run"],
  }),
  archive: flag({
    kind: "negatable",
    name: "archive",
    positiveDoc:
      "keep the backup's archive_command: once promoted, the copy archives its new timeline into the repository (a real failover)",
    doc: "set archive_mode = off in the copy: it never writes into the repository",
    // Off unless asked: a copy archiving into the source repository makes its new timeline
    // the one "latest" follows for every later restore and standby.
    default: false,
    commands: ["restore run"],
  }),
  // The target flags are checked together (one target, formats) where they are used.
  targetTime: flag({
    kind: "value",
    name: "target-time",
    placeholder: "<time>",
    doc: "recover to this moment: ISO 8601 with a zone, or relative to now such as -1h, -30m, -2d",
    commands: [...RESTORE, "drill run"],
  }),
  targetLsn: flag({
    kind: "value",
    name: "target-lsn",
    placeholder: "<lsn>",
    doc: "recover to this WAL location (e.g. 0/16B3748)",
    commands: [...RESTORE, "drill run"],
  }),
  targetXid: flag({
    kind: "value",
    name: "target-xid",
    placeholder: "<xid>",
    doc: "recover to this transaction id",
    commands: [...RESTORE, "drill run"],
  }),
  targetName: flag({
    kind: "value",
    name: "target-name",
    placeholder: "<name>",
    doc: "recover to this restore point (pg_create_restore_point)",
    commands: [...RESTORE, "drill run"],
  }),
  latest: flag({
    kind: "switch",
    name: "latest",
    doc: "recover to the end of the archive (the default)",
    commands: [...RESTORE, "drill run"],
  }),
  immediate: flag({
    kind: "switch",
    name: "immediate",
    doc: "recover just to consistency: the end of the backup",
    commands: [...RESTORE, "drill run"],
  }),
  targetTimeline: flag({
    kind: "value",
    name: "target-timeline",
    placeholder: "<tli>",
    doc: "latest (default), current, or a timeline number",
    commands: RESTORE,
  }),
  targetExclusive: flag({
    kind: "switch",
    name: "target-exclusive",
    doc: "stop just before the target instead of just after it",
    commands: [...RESTORE, "drill run"],
  }),
  targetAction: flag({
    kind: "value",
    name: "target-action",
    placeholder: "<action>",
    doc: "at the target: pause (default, PostgreSQL's), promote or shutdown",
    commands: RESTORE,
  }),
  backup: flag({
    kind: "value",
    name: "backup",
    placeholder: "<id>",
    doc: "use this backup instead of the one pgha would choose",
    docs: {
      standby: "build from this backup instead of the latest",
      "drill run": "drill this backup instead of the one pgha would choose",
      verify:
        "verify this backup only, with the backups of its chain: their objects and the WAL their restores replay",
    },
    commands: [...RESTORE, "standby", "drill run", "verify"],
  }),
  checkSql: flag({
    kind: "value",
    name: "check-sql",
    placeholder: "<file>",
    doc: "SQL statements that must each return a row (and true, if boolean)",
    commands: ["drill run"],
  }),
  keep: flag({
    kind: "switch",
    name: "keep",
    doc: "leave the scratch directory (and its server.log) for inspection",
    commands: ["drill run"],
  }),
  idleExit: flag({
    kind: "value",
    name: "idle-exit",
    placeholder: "<duration>",
    doc: "exit after this long with nothing to do (wal-push starts it with 60s); default: run until stopped",
    parse: described(parseDuration, "a duration"),
    hint: "for example 60s",
    commands: ["archiver", "prefetcher"],
  }),
  timeout: flag({
    kind: "value",
    name: "timeout",
    placeholder: "<duration>",
    doc: "how long the server may take to start and replay",
    parse: described(parseDuration, "a duration"),
    default: "1h",
    hint: "for example 30m",
    commands: ["drill run"],
  }),
  switchTimeout: flag({
    kind: "value",
    name: "timeout",
    placeholder: "<duration>",
    doc: "how long the WAL segment pg_switch_wal() closes may take to reach the repository",
    parse: described(parseDuration, "a duration"),
    default: "60s",
    hint: "for example 2m",
    commands: ["check"],
  }),
  label: flag({
    kind: "value",
    name: "label",
    placeholder: "<text>",
    ...ofBackupOrDumpSet((what) => `a label stored with the ${what}`),
  }),
  pin: flag({
    kind: "switch",
    name: "pin",
    ...ofBackupOrDumpSet((what) => `never prune this ${what}`),
  }),
  now: flag({
    kind: "value",
    name: "now",
    placeholder: "<time>",
    doc: "plan as if it were this moment (ISO 8601)",
    parse: (raw: string): string => {
      if (Number.isNaN(Date.parse(raw))) throw new ValueError(`'${raw}' is not an ISO 8601 time`);
      return raw;
    },
    default: { text: "now", compute: () => new Date().toISOString() },
    hint: "for example --now 2026-11-21T12:00:00Z",
    commands: ["retention simulate", "prune"],
  }),
  count: flag({
    kind: "value",
    name: "count",
    placeholder: "<n>",
    doc: "how many run times per job",
    parse: (raw: string): number => {
      const count = Number(raw);
      if (!Number.isInteger(count) || count < 1 || count > 1000) {
        throw new ValueError(`'${raw}' is not 1-1000`);
      }
      return count;
    },
    default: "5",
    hint: "for example --count 10",
    commands: ["schedule show"],
  }),
  maxRpo: flag({
    kind: "value",
    name: "max-rpo",
    placeholder: "<duration>",
    doc: "exit 14 when the newest archived WAL is older than this (for example 15m)",
    parse: described(parseDuration, "a duration"),
    hint: "for example 5m, 15m or 1h",
    commands: ["status"],
  }),
  maxBackupAge: flag({
    kind: "value",
    name: "max-backup-age",
    placeholder: "<duration>",
    doc: "exit 14 when the newest base backup ended longer ago than this (for example 26h)",
    parse: described(parseDuration, "a duration"),
    hint: "for example 26h or 8d",
    commands: ["status"],
  }),
  maxDrillAge: flag({
    kind: "value",
    name: "max-drill-age",
    placeholder: "<duration>",
    doc: "exit 14 when the newest passing restore drill ended longer ago than this (for example 8d)",
    parse: described(parseDuration, "a duration"),
    hint: "for example 8d or 32d",
    commands: ["status"],
  }),
  allClusters: flag({
    kind: "switch",
    name: "all-clusters",
    doc: "every cluster of the repository, not only --cluster's",
    commands: ["status", "metrics"],
  }),
  textfile: flag({
    kind: "value",
    name: "textfile",
    placeholder: "<dir>",
    doc: "write the metrics atomically into <dir>/pgha-<cluster>.prom (pgha.prom with --all-clusters) for node_exporter's textfile collector, instead of printing them",
    commands: ["metrics"],
  }),
  metricsListen: flag({
    kind: "value",
    name: "metrics-listen",
    placeholder: "<host:port>",
    doc: "also serve `pgha metrics` for the cluster at http://<host:port>/metrics (off by default; for example 127.0.0.1:9187)",
    parse: parseListenAddress,
    hint: "for example 127.0.0.1:9187 or [::1]:9187",
    commands: ["schedule run"],
  }),
  markdown: flag({
    kind: "switch",
    name: "markdown",
    doc: "print Markdown tables (as in README.md)",
    commands: ["options"],
  }),
  since: flag({
    kind: "value",
    name: "since",
    placeholder: "<time>",
    doc: "read only backups and dump sets that ended, and WAL stored, at or after this time (ISO 8601 with a zone, or relative to now: -1d); WAL continuity is still checked over the whole window",
    parse: parseInstant,
    hint: "for example -7d, -12h or 2026-11-21T00:00:00Z",
    docs: {
      "restore find":
        "only transactions that committed at or after this time (ISO 8601 with a zone, or relative to now: -1d); the WAL is read from the newest backup that ended before it (default: the oldest backup)",
    },
    commands: ["verify", "restore find"],
  }),
  until: flag({
    kind: "value",
    name: "until",
    placeholder: "<time>",
    doc: "only transactions that committed at or before this time (ISO 8601 with a zone, or relative to now: -1h); reading stops there",
    parse: parseInstant,
    hint: "for example -1h or 2026-11-21T14:00:00Z",
    commands: ["restore find"],
  }),
  dropped: flag({
    kind: "value",
    name: "dropped",
    placeholder: "<name>",
    doc: "find the transactions that dropped this table ([schema.]name)",
    commands: ["restore find"],
  }),
  truncated: flag({
    kind: "value",
    name: "truncated",
    placeholder: "<name>",
    doc: "find the transactions that truncated this table ([schema.]name)",
    commands: ["restore find"],
  }),
  deletedFrom: flag({
    kind: "value",
    name: "deleted-from",
    placeholder: "<name>",
    doc: "find the transactions that deleted at least --min-rows rows from this table ([schema.]name)",
    commands: ["restore find"],
  }),
  minRows: flag({
    kind: "value",
    name: "min-rows",
    placeholder: "<n>",
    doc: "with --deleted-from: the fewest deleted rows that make a finding",
    parse: (raw: string): number => {
      const n = Number(raw);
      if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1)
        throw new ValueError(`'${raw}' is not a whole number of rows (1 or more)`);
      return n;
    },
    default: "1000",
    hint: "for example --min-rows 100",
    commands: ["restore find"],
  }),
  sample: flag({
    kind: "value",
    name: "sample",
    placeholder: "<n|pct%>",
    doc: "read and hash only N objects (or PCT% of them) of each backup, each dump set and of the WAL, chosen at random; every object is still checked for presence and size",
    parse: (raw: string) => {
      try {
        return parseSample(raw);
      } catch (error) {
        throw new ValueError((error as Error).message);
      }
    },
    hint: "for example --sample 20 or --sample 5%",
    commands: ["verify"],
  }),
  json: flag({
    kind: "switch",
    name: "json",
    doc: "print JSON for scripts",
    docs: {
      prune: "print the plan as JSON",
      "drill run": "print the report as JSON",
      check: "print the steps as JSON",
      verify: "print the report as JSON",
      "restore find": "print the findings as JSON",
    },
    commands: [
      "backup list",
      "backup info",
      "dump list",
      "dump info",
      "retention simulate",
      "prune",
      "lock list",
      "restore plan",
      "restore find",
      "drill run",
      "drill list",
      "status",
      "check",
      "verify",
      "cluster list",
      "schedule show",
    ],
  }),
} as const;

export type FlagKey = keyof typeof FLAGS;

export const FLAG_KEYS = Object.keys(FLAGS) as FlagKey[];

/** What a command receives for a flag: given, else its default. */
export type FlagValue<F> = F extends SwitchFlag | NegatableFlag
  ? boolean
  : F extends ListFlag
    ? string[]
    : F extends { kind: "value" }
      ? ParsedAs<F> | (F extends { default: unknown } ? never : undefined)
      : never;

type ParsedAs<F> = F extends { parse: (raw: string) => infer T } ? T : string;

/** The typed flag values of one command. */
export type FlagsOf<C extends CommandName> = {
  -readonly [K in FlagKey as C extends (typeof FLAGS)[K]["commands"][number]
    ? K
    : never]: FlagValue<(typeof FLAGS)[K]>;
};

/** What a command is called with: its typed flags, and the setting flags for loadContext. */
export type OptionsOf<C extends CommandName> = FlagsOf<C> & { settings: SettingFlags };

export function flagsOf(command: CommandName): FlagKey[] {
  return FLAG_KEYS.filter((key) => (FLAGS[key].commands as readonly string[]).includes(command));
}

/** The doc of a flag as one command shows it. */
export function flagDoc(spec: FlagSpec, command: CommandName): string {
  return spec.docs?.[command] ?? spec.doc;
}

export function flagDefaultText(spec: FlagSpec): string | undefined {
  if (spec.kind !== "value" || spec.default === undefined) return undefined;
  return typeof spec.default === "string" ? spec.default : spec.default.text;
}

/**
 * Pure: a command's typed flags from what the command line gave, by flag key (strings for
 * values, arrays for lists, booleans for switches; absent when not given), with defaults.
 * Throws a one-line UsageError naming the flag.
 */
export function resolveFlags<C extends CommandName>(
  command: C,
  given: Partial<Record<FlagKey, unknown>>,
): FlagsOf<C> {
  const values: Record<string, unknown> = {};
  for (const key of flagsOf(command)) {
    const spec: FlagSpec = FLAGS[key];
    const raw = given[key];
    if (spec.kind === "switch") values[key] = raw === true;
    else if (spec.kind === "negatable") values[key] = typeof raw === "boolean" ? raw : spec.default;
    else if (spec.kind === "list") values[key] = Array.isArray(raw) ? raw.map(String) : [];
    else if (typeof raw === "string") values[key] = parseFlag(spec, raw);
    else if (typeof spec.default === "string") values[key] = parseFlag(spec, spec.default);
    else values[key] = spec.default?.compute();
  }
  return values as FlagsOf<C>;
}

function parseFlag<T>(spec: ValueFlag<T>, raw: string): T | string {
  if (spec.parse === undefined) return raw;
  try {
    return spec.parse(raw);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`--${spec.name} ${why}`, spec.hint ?? `expected ${spec.placeholder}`);
  }
}
