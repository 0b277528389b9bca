/**
 * The command table: every command's words, description, arguments, the setting groups
 * (options.ts) it takes, its exit codes and help, and its implementation, imported only
 * when it runs. Its flags are declared in the flag table (config/flags.ts). program.ts builds
 * commander from both. The rows of wal-push and wal-fetch live in hot-args.ts: PostgreSQL's
 * calls read them without loading this module.
 */
import type { CommandName, OptionsOf } from "../config/flags.js";
import type { OptionGroup } from "../config/options.js";
import type { ExitCodeName } from "../errors.js";
import { HOT_COMMANDS } from "./hot-args.js";

export interface Argument {
  /** `<id>` (required) or `[file]` (optional), as help shows it. */
  readonly name: string;
  readonly doc: string;
}

export interface CommandSpec<C extends CommandName> {
  /** What runs for `pgha <parent>` without a subcommand. */
  readonly isDefault?: true;
  readonly description: string;
  readonly args: readonly Argument[];
  /** Setting groups; none means no setting flags and no --config either. */
  readonly groups: readonly OptionGroup[];
  /** Exit codes by name, rendered from the exit-code table. */
  readonly exitCodes: readonly ExitCodeName[];
  /** A command's own wording of some exit codes (wal-fetch: PostgreSQL's reading of them). */
  readonly exitMeanings?: Partial<Record<ExitCodeName, string>>;
  /** Help printed before the exit codes. */
  readonly help?: string;
  /** Positional arguments in the order of `args` (optional ones may be absent). */
  readonly run: (args: readonly (string | undefined)[], opts: OptionsOf<C>) => Promise<number>;
}

/** The words before a subcommand: `pgha backup` alone runs `backup create`. */
export interface ParentSpec {
  readonly description: string;
  readonly help?: string;
  readonly exitCodes?: readonly ExitCodeName[];
}

const STORE_READ: readonly OptionGroup[] = ["repository", "s3", "general"];
/** What a command that fetches a base backup takes. */
const FETCH: readonly OptionGroup[] = ["repository", "s3", "parallel", "general"];

const BACKUP_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "clusterMismatch",
  "integrity",
  "storage",
  "localIo",
  "locked",
  "postgres",
  "internal",
];

/** Help lists codes in the table's order: where a name is added makes no difference. */
const DUMP_CODES: ExitCodeName[] = [...BACKUP_CODES, "notFoundInRepo"];

const RESTORE_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "integrity",
  "storage",
  "unrestorable",
  "notFoundInRepo",
  "internal",
];

const LIST_CODES: ExitCodeName[] = ["ok", "usage", "integrity", "storage", "notFoundInRepo"];
const INFO_CODES: ExitCodeName[] = ["ok", "usage", "integrity", "storage", "notFoundInRepo"];
const FETCH_CODES: ExitCodeName[] = [...INFO_CODES, "localIo"];

const arg = (name: string, doc: string): Argument => ({ name, doc });
const str = (value: string | undefined): string => value ?? "";

/** `list` of a catalog (backups, dump sets): the same shape for both. */
function listCommand<C extends "backup list" | "dump list">(
  plural: string,
  run: CommandSpec<C>["run"],
): CommandSpec<C> {
  const description = `list the ${plural} of the cluster, oldest first`;
  return { description, args: [], groups: STORE_READ, exitCodes: LIST_CODES, run };
}

/** `info` of one catalog item. */
function infoCommand<C extends "backup info" | "dump info">(
  noun: string,
  run: CommandSpec<C>["run"],
): CommandSpec<C> {
  const args = [arg("<id>", `a ${noun} id, or latest`)];
  return { description: `show one ${noun}`, args, groups: STORE_READ, exitCodes: INFO_CODES, run };
}

const EDIT_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "integrity",
  "storage",
  "locked",
  "notFoundInRepo",
  "internal",
];

/** `backup pin|unpin`, `dump pin|unpin`: a pin record beside the manifest. */
function pinCommand<C extends "backup pin" | "backup unpin" | "dump pin" | "dump unpin">(
  kind: "backup" | "dump",
  pinned: boolean,
): CommandSpec<C> {
  const noun = kind === "backup" ? "backup" : "dump set";
  return {
    description: pinned
      ? `pin a ${noun}: prune and retention never delete it (a record beside its manifest)`
      : `unpin a ${noun}: the retention policy decides about it again`,
    args: [arg("<id>", `a ${noun} id, or latest`)],
    groups: STORE_READ,
    exitCodes: EDIT_CODES,
    run: async ([id], opts) =>
      (await import("./commands/catalog-edit.js")).pinCommand(kind, str(id), pinned, opts),
  };
}

/** `pgha backup delete`, `pgha dump delete`. */
function deleteCommand<C extends "backup delete" | "dump delete">(
  kind: "backup" | "dump",
  description: string,
  groups: readonly OptionGroup[],
): CommandSpec<C> {
  const noun = kind === "backup" ? "backup" : "dump set";
  return {
    description,
    args: [arg("<id>", `a ${noun} id, or latest`)],
    groups,
    exitCodes: EDIT_CODES,
    run: async ([id], opts) =>
      (await import("./commands/catalog-edit.js")).deleteCommand(
        kind,
        str(id),
        // Both commands take --confirm; backup delete --allow-shorter-window and
        // --with-dependents too.
        opts as OptionsOf<"dump delete"> & {
          allowShorterWindow?: boolean;
          withDependents?: boolean;
        },
      ),
  };
}

export const PARENTS: Readonly<Record<string, ParentSpec>> = {
  backup: {
    description: "base backups: take one (the default), list, info, fetch, pin, unpin, delete",
    help: "Run 'pgha backup create --help' for the options of taking a backup.",
    exitCodes: BACKUP_CODES,
  },
  dump: {
    description:
      "logical dumps: take a dump set (the default), list, info, restore, fetch, pin, unpin, delete",
    help: "Run 'pgha dump create --help' for the options of taking a dump set.",
    exitCodes: DUMP_CODES,
  },
  retention: { description: "retention policies: see what a policy keeps before trusting it" },
  cluster: {
    description: "the clusters a repository holds: list them, delete one",
  },
  lock: {
    description: "repository locks: see who holds them, break one a crashed run left behind",
  },
  restore: {
    description:
      "point-in-time recovery: plan, find the mistake to stop before, or restore (the default) into a new data directory",
    help: "Run 'pgha restore run --help' for the options of restoring.",
    exitCodes: RESTORE_CODES,
  },
  drill: {
    description: "restore drills: prove a backup restores (the default), or list past drills",
  },
  schedule: {
    description:
      'the scheduler: run jobs from the config file\'s "jobs" list, or show when they run',
  },
  repo: { description: "the repository as a whole: rewrap its encrypted objects to new keys" },
  key: { description: "encryption keys: make an age identity file" },
};

/** In the order of `pgha --help`. */
export const COMMANDS: { readonly [C in CommandName]: CommandSpec<C> } = {
  ...HOT_COMMANDS,
  archiver: {
    description:
      "the asynchronous archiver of a data directory (--archive-async): stores the files PostgreSQL marks\n" +
      ".ready, several at once, and records each one stored and verified for wal-push; wal-push starts it\n" +
      "on demand (with --idle-exit 60s), or run it under systemd; SIGTERM stops it after the files in flight",
    args: [],
    groups: ["repository", "s3", "pgdata", "wal", "walSpeed", "parallel", "general"],
    exitCodes: ["ok", "usage", "storage", "localIo", "internal"],
    run: async (_, opts) => (await import("./commands/archiver.js")).archiverCommand(opts),
  },
  prefetcher: {
    description:
      "the restore prefetcher of a data directory (--prefetch): keeps the segments after the one recovery\n" +
      "last asked for downloaded and verified in pg_wal/.pgha/prefetch; wal-fetch starts it on demand",
    args: [],
    groups: ["repository", "s3", "pgdata", "wal", "walSpeed", "general"],
    exitCodes: ["ok", "usage", "storage", "localIo", "internal"],
    run: async (_, opts) => (await import("./commands/prefetcher.js")).prefetcherCommand(opts),
  },
  "backup create": {
    isDefault: true,
    description:
      "take a base backup of the server (pgha runs on the database host): a non-exclusive backup,\n" +
      "streamed as tar through zstd into the repository, complete once its WAL is archived and its manifest stored",
    args: [],
    groups: ["repository", "s3", "pgdata", "postgres", "wal", "parallel", "backup", "general"],
    exitCodes: BACKUP_CODES,
    run: async (_, opts) => (await import("./commands/backup.js")).backupCreateCommand(opts),
  },
  "backup list": listCommand("backups", async (_, opts) =>
    (await import("./commands/backup.js")).backupListCommand(opts),
  ),
  "backup info": infoCommand("backup", async ([id], opts) =>
    (await import("./commands/backup.js")).backupInfoCommand(str(id), opts),
  ),
  "backup fetch": {
    description:
      "rebuild a data directory (and its tablespaces) from a backup, verifying every checksum;\n" +
      "writes no recovery configuration. The target must be empty or absent.",
    args: [arg("<id>", "a backup id, or latest"), arg("<dir>", "the new data directory")],
    groups: FETCH,
    exitCodes: FETCH_CODES,
    run: async ([id, dir], opts) =>
      (await import("./commands/backup.js")).backupFetchCommand(str(id), str(dir), opts),
  },
  "backup pin": pinCommand("backup", true),
  "backup unpin": pinCommand("backup", false),
  "backup delete": deleteCommand(
    "backup",
    "delete one backup's objects: prints the plan, deletes only with --confirm; refuses a pinned backup and\n" +
      "one the --pitr-window needs (its base, the only backup), and one incremental backups need (unless\n" +
      "--with-dependents); the WAL only it needed goes at the next prune",
    ["repository", "s3", "retention", "window", "general"],
  ),
  "dump create": {
    isDefault: true,
    description:
      "pg_dumpall --globals-only plus pg_dump -Fc of every connectable non-template database (or --db ones),\n" +
      "streamed into the repository; the set is listed only once every program succeeded",
    args: [],
    groups: ["repository", "s3", "postgres", "general"],
    exitCodes: DUMP_CODES,
    run: async (_, opts) => (await import("./commands/dump.js")).dumpCreateCommand(opts),
  },
  "dump list": listCommand("dump sets", async (_, opts) =>
    (await import("./commands/dump.js")).dumpListCommand(opts),
  ),
  "dump info": infoCommand("dump set", async ([id], opts) =>
    (await import("./commands/dump.js")).dumpInfoCommand(str(id), opts),
  ),
  "dump restore": {
    description:
      "restore from a dump set into the server the libpq settings name: --globals through psql,\n" +
      "--db through pg_restore into a new database (dropped again if anything fails)",
    args: [arg("<id>", "a dump set id, or latest")],
    groups: ["repository", "s3", "postgres", "general"],
    exitCodes: ["ok", "usage", "refused", "integrity", "storage", "postgres", "notFoundInRepo"],
    run: async ([id], opts) =>
      (await import("./commands/dump.js")).dumpRestoreCommand(str(id), opts),
  },
  "dump fetch": {
    description:
      "write a dump set's plain files (globals.sql, <database>.dump for pg_restore) into a directory",
    args: [arg("<id>", "a dump set id, or latest"), arg("<dir>", "where to write them")],
    groups: STORE_READ,
    exitCodes: FETCH_CODES,
    run: async ([id, dir], opts) =>
      (await import("./commands/dump.js")).dumpFetchCommand(str(id), str(dir), opts),
  },
  "dump pin": pinCommand("dump", true),
  "dump unpin": pinCommand("dump", false),
  "dump delete": deleteCommand(
    "dump",
    "delete one dump set: prints the plan, deletes only with --confirm; refuses a pinned dump set",
    STORE_READ,
  ),
  "retention simulate": {
    description:
      'plan a policy over a JSON list of items ([{"id", "time", "pinned"?}]) and print what it keeps and why',
    args: [arg("[file]", "the items (JSON); - or nothing reads stdin")],
    groups: ["retention", "window", "general"],
    exitCodes: ["ok", "usage"],
    help: "Rules (restic's --keep-* semantics): walking newest to oldest, a rule keeps the newest item of each of\nthe N most recent periods that contain an item; weeks are ISO weeks in --retention-zone. Pinned items,\nthe newest item and the base of the --pitr-window (the newest item that ended at or before now - window;\nan item's end defaults to its time) are always kept, the last unless --allow-shorter-window.",
    run: async ([file], opts) =>
      (await import("./commands/retention.js")).simulateCommand(file, opts),
  },
  prune: {
    description:
      "apply the retention policy to base backups and dump sets (each on its own), and delete the WAL no kept\n" +
      "backup needs beyond --pitr-window; prints the plan and deletes only with --confirm",
    args: [],
    groups: ["repository", "s3", "retention", "window", "general"],
    exitCodes: ["ok", "usage", "integrity", "storage", "locked", "internal"],
    run: async (_, opts) => (await import("./commands/retention.js")).pruneCommand(opts),
  },
  "cluster list": {
    description:
      "list the clusters the repository holds: backups, dump sets, WAL files, bytes, the last archived segment",
    args: [],
    groups: STORE_READ,
    exitCodes: ["ok", "usage", "storage"],
    run: async (_, opts) => (await import("./commands/cluster.js")).clusterListCommand(opts),
  },
  "cluster delete": {
    description:
      "delete every object of a cluster (WAL, backups, dump sets, drills, identity): prints what it would\n" +
      "delete, deletes only with --confirm; refuses while a backup, dump or prune of it holds a lock",
    args: [arg("<name>", "the cluster (not --cluster: the name is asked for on purpose)")],
    groups: STORE_READ,
    exitCodes: ["ok", "usage", "refused", "storage", "locked", "notFoundInRepo", "internal"],
    help: "Stop archiving into the cluster first (archive_command): a wal-push after the delete starts it again.",
    run: async ([name], opts) =>
      (await import("./commands/cluster.js")).clusterDeleteCommand(str(name), opts),
  },
  "lock list": {
    description:
      "show the cluster's repository locks (backup and prune hold 'cluster', dump and prune 'dump'): who holds\n" +
      "each, since when, when it expires, and whether its process still runs",
    args: [],
    groups: STORE_READ,
    exitCodes: ["ok", "usage", "storage"],
    run: async (_, opts) => (await import("./commands/lock.js")).lockListCommand(opts),
  },
  "lock break": {
    description:
      "remove the cluster's locks (or the one named) that a crashed run left: prints them, removes them only with\n" +
      "--confirm; refuses a lock whose process still runs on this host",
    args: [arg("[name]", "cluster or dump; default both")],
    groups: STORE_READ,
    exitCodes: ["ok", "usage", "refused", "storage"],
    help:
      "A lock whose process on this host is gone (kill -9) is taken over by the next run at once, and any lock\n" +
      "expires 5 minutes after its holder last refreshed it: break a lock by hand only when its holder ran on\n" +
      "another host that is gone. A run still working elsewhere notices at its next heartbeat and stops.",
    run: async ([name], opts) => (await import("./commands/lock.js")).lockBreakCommand(name, opts),
  },
  "restore plan": {
    description:
      "choose the backup for a target, follow its timeline path and check every WAL segment it needs is\n" +
      "archived (gaps are reported before anything is downloaded); print the recovery settings",
    args: [],
    groups: STORE_READ,
    exitCodes: RESTORE_CODES,
    run: async (_, opts) => (await import("./commands/restore.js")).restorePlanCommand(opts),
  },
  "restore run": {
    isDefault: true,
    description:
      "execute the plan: fetch the backup into an empty --pgdata and write the recovery configuration\n" +
      "(PostgreSQL 12+: recovery.signal and postgresql.auto.conf; older: recovery.conf)",
    args: [],
    groups: ["repository", "s3", "pgdata", "parallel", "general"],
    exitCodes: [...RESTORE_CODES, "localIo"],
    run: async (_, opts) => (await import("./commands/restore.js")).restoreRunCommand(opts),
  },
  "restore find": {
    description:
      "find the transaction that dropped or truncated a table, or deleted many of its rows, in the archived WAL;\n" +
      "each finding prints the restore and drill commands that stop just before it",
    args: [],
    groups: ["repository", "s3", "postgres", "general"],
    exitCodes: [...RESTORE_CODES, "localIo", "postgres"],
    help:
      "Give one of --dropped, --truncated or --deleted-from with a table name ([schema.]name; unquoted names\n" +
      'are folded to lower case, "Quoted" ones are not). The WAL is read from the backup before --since (the\n' +
      "oldest by default) to --until or the end of the archive, with the server's pg_waldump (--pg-bin), through\n" +
      "a temporary directory holding at most 13 segments at a time (TMPDIR, else /dev/shm). Findings are listed newest first: commit\n" +
      "time, transaction id, commit LSN, what was done and to which relation. A name nothing matches prints an\n" +
      "empty list and exits 0. Needs backups taken by a pgha that records a relation map, of PostgreSQL 15+.",
    run: async (_, opts) => (await import("./commands/find.js")).restoreFindCommand(opts),
  },
  standby: {
    description:
      "build a standby from the latest backup: standby.signal, primary_conninfo, primary_slot_name,\n" +
      "restore_command (the archive when streaming breaks) and, for a delayed standby, recovery_min_apply_delay;\n" +
      "without --primary-conninfo it follows the repository alone (restore_command only)",
    args: [],
    groups: ["repository", "s3", "pgdata", "parallel", "general"],
    exitCodes: [...RESTORE_CODES, "localIo"],
    run: async (_, opts) => (await import("./commands/restore.js")).standbyCommand(opts),
  },
  "drill run": {
    isDefault: true,
    description:
      "restore into a scratch directory, start PostgreSQL there with archiving off, wait for the target and\n" +
      "the promotion, run the checks, time every phase, clean up; the report is stored in the repository",
    args: [],
    groups: ["repository", "s3", "postgres", "parallel", "general"],
    exitCodes: [
      "ok",
      "usage",
      "integrity",
      "storage",
      "localIo",
      "postgres",
      "unrestorable",
      "notFoundInRepo",
      "drillFailed",
      "internal",
    ],
    run: async (_, opts) => (await import("./commands/drill.js")).drillCommand(opts),
  },
  "drill list": {
    description: "list the stored drill reports, oldest first",
    args: [],
    groups: STORE_READ,
    exitCodes: ["ok", "usage", "storage"],
    run: async (_, opts) => (await import("./commands/drill.js")).drillListCommand(opts),
  },
  "schedule run": {
    description:
      "a foreground daemon (for systemd or a container) that runs each job (backup, dump, prune, drill) at its\n" +
      "cron times in its zone; a job never overlaps itself; a run missed while down runs once at start;\n" +
      "SIGTERM lets running jobs finish within --schedule-grace",
    args: [],
    groups: ["repository", "s3", "schedule", "general"],
    exitCodes: ["ok", "usage", "storage", "internal"],
    run: async (_, opts) => (await import("./commands/schedule.js")).scheduleRunCommand(opts),
  },
  "schedule show": {
    description:
      "print the next run times of every job, in the job's zone (daylight-saving changes included)",
    args: [],
    groups: ["general"],
    exitCodes: ["ok", "usage"],
    run: async (_, opts) => (await import("./commands/schedule.js")).scheduleShowCommand(opts),
  },
  status: {
    description:
      "what the repository holds for the cluster: the newest archived WAL and its age (the RPO), the window of\n" +
      "time each timeline can be restored to and the gaps that cut it, the newest backup, dump set and drill,\n" +
      "the bytes stored by kind, and, where the server answers, pg_stat_archiver and the files waiting (.ready);\n" +
      "on a terminal, a bar per timeline",
    args: [],
    groups: ["repository", "s3", "pgdata", "postgres", "general"],
    exitCodes: ["ok", "usage", "integrity", "storage", "notFoundInRepo", "thresholdBreached"],
    help:
      "With --max-rpo, --max-backup-age or --max-drill-age, each breached threshold prints one line and the\n" +
      "exit code is 14: for cron or a monitoring agent. An unreachable server is a note, not a failure.",
    run: async (_, opts) => (await import("./commands/status.js")).statusCommand(opts),
  },
  metrics: {
    description:
      "the status as Prometheus metrics (text format): printed, or written atomically for node_exporter's\n" +
      "textfile collector with --textfile; 'pgha schedule run --metrics-listen' serves them over HTTP",
    args: [],
    groups: ["repository", "s3", "pgdata", "postgres", "general"],
    exitCodes: ["ok", "usage", "integrity", "storage", "localIo", "notFoundInRepo"],
    run: async (_, opts) => (await import("./commands/status.js")).metricsCommand(opts),
  },
  check: {
    description:
      "check the setup end to end, each step pass, fail or skip with a hint: the configuration; the storage\n" +
      "(a probe object written, read back, listed and deleted; whether conditional writes are honoured); the\n" +
      "server connection; the repository's record of the cluster; archive_mode; archive_command calling\n" +
      "pgha wal-push with the same repository and cluster; and a WAL segment closed with pg_switch_wal()\n" +
      "reaching the repository within --timeout",
    args: [],
    groups: ["repository", "s3", "pgdata", "postgres", "general"],
    exitCodes: [
      "ok",
      "usage",
      "clusterMismatch",
      "integrity",
      "storage",
      "postgres",
      "notArchiving",
      "walNotArchived",
      "internal",
    ],
    help:
      "The exit code is the first failed step's. Steps after a failed one they need are skipped. The server\n" +
      "is --pg-conn, the libpq variables (PGHOST, PGPORT, ...), or the one running on --pgdata; without any\n" +
      "of them the server steps are skipped with a note and the check passes on the storage alone.",
    run: async (_, opts) => (await import("./commands/check.js")).checkCommand(opts),
  },
  verify: {
    description:
      "check the repository before a restore has to: WAL continuity over the point-in-time window of every\n" +
      "timeline (gaps, names stored twice, history files, forks), each backup's WAL from its start to its end,\n" +
      "and every object of every backup and dump set and every WAL object read and hashed (or a --sample);\n" +
      "records the result of each backup and dump set for 'backup list'",
    args: [],
    groups: ["repository", "s3", "window", "parallel", "general"],
    exitCodes: [
      "ok",
      "usage",
      "integrity",
      "storage",
      "unrestorable",
      "notFoundInRepo",
      "internal",
    ],
    exitMeanings: {
      ok: "nothing wrong was found (warnings, such as a fork, may have been printed)",
      integrity:
        "a stored object is missing, has the wrong size or checksum, or a manifest or history file is damaged (any gaps are listed too)",
      unrestorable:
        "WAL is missing from the point-in-time window (a gap), or a backup cannot be restored to its end; no object is damaged",
    },
    run: async (_, opts) => (await import("./commands/verify.js")).verifyCommand(opts),
  },
  "repo rekey": {
    description:
      "rewrap every encrypted object of the repository to the configured recipients (encryption-recipients):\n" +
      "prints the plan, rewrites only with --confirm; resumable (objects already rewrapped are skipped)",
    args: [],
    groups: ["repository", "s3", "parallel", "general"],
    exitCodes: ["ok", "usage", "refused", "integrity", "storage", "internal"],
    help: "Needs an identity that opens the objects now (the old key) and the new recipients: put the old and\nthe new identity in the identity file for the rekey. Each object is rewritten whole, with the same\npayload and a new header (FORMAT.md, Encryption).",
    run: async (_, opts) => (await import("./commands/repo.js")).rekeyCommand(opts),
  },
  "key generate": {
    description:
      "write a new age X25519 identity to a file (mode 0600, never over an existing one) and print its\npublic key, the recipient to put in encryption-recipients",
    args: [arg("<file>", "the identity file to create")],
    groups: [],
    exitCodes: ["ok", "usage", "localIo"],
    run: async ([file]) => (await import("./commands/repo.js")).keyGenerateCommand(str(file)),
  },
  options: {
    description:
      "list every setting (flag, environment variable, config-file key, default) and every command flag",
    args: [],
    groups: [],
    exitCodes: ["ok"],
    run: async (_, opts) => (await import("./commands/options.js")).optionsCommand(opts.markdown),
  },
};
