/**
 * The commander program: help texts, flags from the option table, one action per command
 * that imports the command's implementation only when it runs. Loaded for everything but
 * the plain wal-push / wal-fetch calls PostgreSQL makes (see hot-args.ts).
 */
import { Command, Option } from "commander";
import {
  DEFAULT_CONFIG_FILE,
  OPTIONS,
  type OptionGroup,
  optionsInGroups,
} from "../config/options.js";
import { EXIT_CODE_TABLE, type ExitCodeName } from "../errors.js";
import { COMMAND_GROUPS } from "./hot-args.js";

const VERSION = "0.1.0";

/** The exit-code table's rows for names; `meanings` words a row for one command. */
function exitCodeHelp(
  names: readonly ExitCodeName[],
  meanings: Partial<Record<ExitCodeName, string>> = {},
): string {
  const rows = EXIT_CODE_TABLE.filter((row) => names.includes(row.name));
  return `\nExit codes:\n${rows.map((r) => `  ${String(r.code).padStart(3)}  ${meanings[r.name] ?? r.meaning}`).join("\n")}\n`;
}

function addOptions(command: Command, groups: readonly OptionGroup[]): Command {
  command.addOption(
    new Option(
      "--config <file>",
      `config file (JSON) [env PGHA_CONFIG; default ${DEFAULT_CONFIG_FILE} if present]`,
    ),
  );
  for (const key of optionsInGroups(groups)) {
    const spec = OPTIONS[key];
    command.addOption(
      new Option(
        `--${spec.name} ${spec.placeholder}`,
        `${spec.description} [env ${spec.env}; default ${spec.defaultText}]`,
      ),
    );
  }
  return command;
}

const PUSH_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "clusterMismatch",
  "walConflict",
  "integrity",
  "storage",
  "localIo",
  "internal",
];

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

const DUMP_CODES: ExitCodeName[] = [
  "ok",
  "notFound",
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

const RESTORE_CODES: ExitCodeName[] = [
  "ok",
  "usage",
  "refused",
  "integrity",
  "storage",
  "unrestorable",
  "internal",
];

function addTargetOptions(command: Command): Command {
  return command
    .option("--target-time <time>", "recover to this moment (ISO 8601 with a zone)")
    .option("--target-lsn <lsn>", "recover to this WAL location (e.g. 0/16B3748)")
    .option("--target-xid <xid>", "recover to this transaction id")
    .option("--target-name <name>", "recover to this restore point (pg_create_restore_point)")
    .option("--latest", "recover to the end of the archive (the default)")
    .option("--immediate", "recover just to consistency: the end of the backup")
    .option("--target-timeline <tli>", "latest (default), current, or a timeline number")
    .option("--target-exclusive", "stop just before the target instead of just after it")
    .option(
      "--target-action <action>",
      "at the target: pause (default, PostgreSQL's), promote or shutdown",
    )
    .option("--backup <id>", "use this backup instead of the one pgha would choose");
}

/** `list` and `info` of a catalog (backups, dump sets): the same shape for both. */
function addCatalogCommands(
  parent: Command,
  noun: string,
  plural: string,
  setCode: (code: number) => void,
  load: () => Promise<{
    list(opts: Record<string, unknown>): Promise<number>;
    info(id: string, opts: Record<string, unknown>): Promise<number>;
  }>,
): void {
  addOptions(
    parent
      .command("list")
      .description(`list the ${plural} of the cluster, oldest first`)
      .option("--json", "print JSON for scripts")
      .addHelpText("after", exitCodeHelp(["ok", "usage", "integrity", "storage"])),
    ["repository", "s3", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    setCode(await (await load()).list(opts));
  });
  addOptions(
    parent
      .command("info")
      .description(`show one ${noun}`)
      .argument("<id>", `a ${noun} id, or latest`)
      .option("--json", "print JSON for scripts")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "notFound", "usage", "refused", "integrity", "storage"]),
      ),
    ["repository", "s3", "general"],
  ).action(async (id: string, opts: Record<string, unknown>) => {
    setCode(await (await load()).info(id, opts));
  });
}

export function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command("pgha")
    .description(
      "PostgreSQL WAL archiving, backups and point-in-time recovery to S3-compatible or local storage",
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text.replace(/^error: /, "pgha: error: ")),
    })
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `${exitCodeHelp(EXIT_CODE_TABLE.map((r) => r.name))}\nPrecedence: flags > environment (PGHA_*) > config file > defaults. 'pgha options' lists every setting.\n`,
    );

  addOptions(
    program
      .command("wal-push")
      .description(
        "archive one WAL file; use as archive_command = 'pgha wal-push %p'.\n" +
          "Exits 0 only after the file is stored and verified, or already archived with identical content.",
      )
      .argument("<path>", "the WAL file (PostgreSQL's %p, relative to the data directory)")
      .addHelpText("after", exitCodeHelp(PUSH_CODES)),
    COMMAND_GROUPS["wal-push"],
  ).action(async (path: string, opts: Record<string, unknown>) => {
    const { walPushCommand } = await import("./commands/wal-push.js");
    setCode(await walPushCommand(path, opts));
  });

  addOptions(
    program
      .command("wal-fetch")
      .description(
        "restore one archived WAL file; use as restore_command = 'pgha wal-fetch %f %p'.\n" +
          "The file is decompressed beside <dest>, checksum-verified, fsynced and renamed into place.",
      )
      .argument("<name>", "WAL file name (PostgreSQL's %f)")
      .argument("<dest>", "where to write it (PostgreSQL's %p, relative to the working directory)")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "notFound", "failClosed"], {
          ok: "delivered and verified",
          notFound:
            'not in the repository (PostgreSQL: "not available"); also any failure when\n       standby.signal is present in --pgdata, so a standby simply retries',
          failClosed:
            "storage, integrity or configuration failure during archive recovery: PostgreSQL\n       stops recovery rather than ending it early and promoting at the wrong point",
        }),
      ),
    COMMAND_GROUPS["wal-fetch"],
  ).action(async (name: string, dest: string, opts: Record<string, unknown>) => {
    const { walFetchCommand } = await import("./commands/wal-fetch.js");
    setCode(await walFetchCommand(name, dest, opts));
  });

  const backup = program
    .command("backup")
    .description("base backups: take one (the default), list, info, fetch")
    .addHelpText(
      "after",
      `\nRun 'pgha backup create --help' for the options of taking a backup.\n${exitCodeHelp(BACKUP_CODES)}`,
    );
  addOptions(
    backup
      .command("create", { isDefault: true })
      .description(
        "take a base backup of the server (pgha runs on the database host): a non-exclusive backup,\n" +
          "streamed as tar through zstd into the repository, complete once its WAL is archived and its manifest stored",
      )
      .option("--fast", "request an immediate checkpoint instead of a spread one")
      .option("--label <text>", "a label stored with the backup")
      .option("--pin", "never prune this backup")
      .addHelpText("after", exitCodeHelp(BACKUP_CODES)),
    ["repository", "s3", "pgdata", "postgres", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { backupCreateCommand } = await import("./commands/backup.js");
    setCode(await backupCreateCommand(opts));
  });
  addCatalogCommands(backup, "backup", "backups", setCode, async () => {
    const m = await import("./commands/backup.js");
    return { list: m.backupListCommand, info: m.backupInfoCommand };
  });
  addOptions(
    backup
      .command("fetch")
      .description(
        "rebuild a data directory (and its tablespaces) from a backup, verifying every checksum;\n" +
          "writes no recovery configuration. The target must be empty or absent.",
      )
      .argument("<id>", "a backup id, or latest")
      .argument("<dir>", "the new data directory")
      .option(
        "--tablespace-map <name=dir>",
        "restore a tablespace (by name or oid) into another directory; repeatable",
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "notFound", "usage", "refused", "integrity", "storage", "localIo"]),
      ),
    ["repository", "s3", "general"],
  ).action(async (id: string, dir: string, opts: Record<string, unknown>) => {
    const { backupFetchCommand } = await import("./commands/backup.js");
    setCode(await backupFetchCommand(id, dir, opts));
  });

  const dump = program
    .command("dump")
    .description("logical dumps: take a dump set (the default), list, info, restore, fetch")
    .addHelpText(
      "after",
      `\nRun 'pgha dump create --help' for the options of taking a dump set.\n${exitCodeHelp(DUMP_CODES)}`,
    );
  addOptions(
    dump
      .command("create", { isDefault: true })
      .description(
        "pg_dumpall --globals-only plus pg_dump -Fc of every connectable non-template database (or --db ones),\n" +
          "streamed into the repository; the set is listed only once every program succeeded",
      )
      .option(
        "--db <name>",
        "dump this database (repeatable; default: all)",
        (v: string, p: string[] = []) => [...p, v],
      )
      .option(
        "--no-role-passwords",
        "leave role passwords out of the globals (pg_dumpall --no-role-passwords)",
      )
      .option("--label <text>", "a label stored with the dump set")
      .option("--pin", "never prune this dump set")
      .addHelpText("after", exitCodeHelp(DUMP_CODES)),
    ["repository", "s3", "postgres", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { dumpCreateCommand } = await import("./commands/dump.js");
    setCode(await dumpCreateCommand(opts));
  });
  addCatalogCommands(dump, "dump set", "dump sets", setCode, async () => {
    const m = await import("./commands/dump.js");
    return { list: m.dumpListCommand, info: m.dumpInfoCommand };
  });
  addOptions(
    dump
      .command("restore")
      .description(
        "restore from a dump set into the server the libpq settings name: --globals through psql,\n" +
          "--db through pg_restore into a new database (dropped again if anything fails)",
      )
      .argument("<id>", "a dump set id, or latest")
      .option("--db <name>", "the database of the dump set to restore")
      .option("--to-db <name>", "restore it under this name instead")
      .option("--globals", "restore roles, memberships and tablespaces first")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "notFound", "usage", "refused", "integrity", "storage", "postgres"]),
      ),
    ["repository", "s3", "postgres", "general"],
  ).action(async (id: string, opts: Record<string, unknown>) => {
    const { dumpRestoreCommand } = await import("./commands/dump.js");
    setCode(await dumpRestoreCommand(id, opts));
  });
  addOptions(
    dump
      .command("fetch")
      .description(
        "write a dump set's plain files (globals.sql, <database>.dump for pg_restore) into a directory",
      )
      .argument("<id>", "a dump set id, or latest")
      .argument("<dir>", "where to write them")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "notFound", "usage", "refused", "integrity", "storage", "localIo"]),
      ),
    ["repository", "s3", "general"],
  ).action(async (id: string, dir: string, opts: Record<string, unknown>) => {
    const { dumpFetchCommand } = await import("./commands/dump.js");
    setCode(await dumpFetchCommand(id, dir, opts));
  });

  const retention = program
    .command("retention")
    .description("retention policies: see what a policy keeps before trusting it");
  addOptions(
    retention
      .command("simulate")
      .description(
        'plan a policy over a JSON list of items ([{"id", "time", "pinned"?}]) and print what it keeps and why',
      )
      .argument("[file]", "the items (JSON); - or nothing reads stdin")
      .option("--now <time>", "the moment to plan at (ISO 8601; default now)")
      .option("--json", "print JSON for scripts")
      .addHelpText(
        "after",
        `\nRules (restic's --keep-* semantics): walking newest to oldest, a rule keeps the newest item of each of\nthe N most recent periods that contain an item; weeks are ISO weeks in --retention-zone. Pinned items and\nthe newest item are always kept.\n${exitCodeHelp(["ok", "usage"])}`,
      ),
    ["retention", "general"],
  ).action(async (file: string | undefined, opts: Record<string, unknown>) => {
    const { simulateCommand } = await import("./commands/retention.js");
    setCode(await simulateCommand(file, opts));
  });
  addOptions(
    program
      .command("prune")
      .description(
        "apply the retention policy to base backups and dump sets (each on its own), and delete the WAL no kept\n" +
          "backup needs beyond --pitr-window; prints the plan and deletes only with --confirm",
      )
      .option("--confirm", "delete what the plan says")
      .option("--now <time>", "plan as if it were this moment (ISO 8601)")
      .option("--json", "print the plan as JSON")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "usage", "integrity", "storage", "locked", "internal"]),
      ),
    ["repository", "s3", "retention", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { pruneCommand } = await import("./commands/retention.js");
    setCode(await pruneCommand(opts));
  });

  const restore = program
    .command("restore")
    .description("point-in-time recovery: plan, or restore (the default) into a new data directory")
    .addHelpText(
      "after",
      `\nRun 'pgha restore run --help' for the options of restoring.\n${exitCodeHelp(RESTORE_CODES)}`,
    );
  addOptions(
    addTargetOptions(
      restore
        .command("plan")
        .description(
          "choose the backup for a target, follow its timeline path and check every WAL segment it needs is\n" +
            "archived (gaps are reported before anything is downloaded); print the recovery settings",
        )
        .option("--json", "print JSON for scripts"),
    ).addHelpText("after", exitCodeHelp(RESTORE_CODES)),
    ["repository", "s3", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { restorePlanCommand } = await import("./commands/restore.js");
    setCode(await restorePlanCommand(opts));
  });
  addOptions(
    addTargetOptions(
      restore
        .command("run", { isDefault: true })
        .description(
          "execute the plan: fetch the backup into an empty --pgdata and write the recovery configuration\n" +
            "(PostgreSQL 12+: recovery.signal and postgresql.auto.conf; older: recovery.conf)",
        )
        .option(
          "--tablespace-map <name=dir>",
          "restore a tablespace (by name or oid) into another directory; repeatable",
          (value: string, previous: string[] = []) => [...previous, value],
        )
        .option(
          "--archive",
          "keep the backup's archive_command: once promoted, the copy archives its new timeline into the repository (a real failover)",
        )
        .option(
          "--no-archive",
          "set archive_mode = off in the copy (the default): it never writes into the repository",
        ),
    ).addHelpText("after", exitCodeHelp([...RESTORE_CODES, "localIo"])),
    ["repository", "s3", "pgdata", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { restoreRunCommand } = await import("./commands/restore.js");
    setCode(await restoreRunCommand(opts));
  });
  addOptions(
    program
      .command("standby")
      .description(
        "build a standby from the latest backup: standby.signal, primary_conninfo, primary_slot_name,\n" +
          "restore_command (the archive when streaming breaks) and, for a delayed standby, recovery_min_apply_delay",
      )
      .option(
        "--primary-conninfo <conninfo>",
        "how the standby reaches the primary (libpq conninfo)",
      )
      .option("--slot <name>", "replication slot on the primary (primary_slot_name)")
      .option("--delay <duration>", "apply commits this late: a delayed standby (30s, 15m, 4h)")
      .option("--backup <id>", "build from this backup instead of the latest")
      .addHelpText("after", exitCodeHelp([...RESTORE_CODES, "localIo"])),
    ["repository", "s3", "pgdata", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { standbyCommand } = await import("./commands/restore.js");
    setCode(await standbyCommand(opts));
  });

  const drill = program
    .command("drill")
    .description("restore drills: prove a backup restores (the default), or list past drills");
  addOptions(
    drill
      .command("run", { isDefault: true })
      .description(
        "restore into a scratch directory, start PostgreSQL there with archiving off, wait for the target and\n" +
          "the promotion, run the checks, time every phase, clean up; the report is stored in the repository",
      )
      .option(
        "--target-time <time>",
        "recover to this moment: ISO 8601 with a zone, or relative such as -1h, -30m, -2d",
      )
      .option("--latest", "recover to the end of the archive (the default)")
      .option("--backup <id>", "drill this backup instead of the one pgha would choose")
      .option(
        "--check-sql <file>",
        "SQL statements that must each return a row (and true, if boolean)",
      )
      .option("--keep", "leave the scratch directory (and its server.log) for inspection")
      .option(
        "--timeout <duration>",
        "how long the server may take to start and replay (default 1h)",
      )
      .option("--json", "print the report as JSON")
      .addHelpText(
        "after",
        exitCodeHelp(["ok", "usage", "storage", "unrestorable", "drillFailed", "internal"]),
      ),
    ["repository", "s3", "postgres", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { drillCommand } = await import("./commands/drill.js");
    setCode(await drillCommand(opts));
  });
  addOptions(
    drill
      .command("list")
      .description("list the stored drill reports, oldest first")
      .option("--json", "print JSON for scripts")
      .addHelpText("after", exitCodeHelp(["ok", "usage", "storage"])),
    ["repository", "s3", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { drillListCommand } = await import("./commands/drill.js");
    setCode(await drillListCommand(opts));
  });

  const schedule = program
    .command("schedule")
    .description(
      'the scheduler: run jobs from the config file\'s "jobs" list, or show when they run',
    );
  addOptions(
    schedule
      .command("run")
      .description(
        "a foreground daemon (for systemd or a container) that runs each job (backup, dump, prune, drill) at its\n" +
          "cron times in its zone; a job never overlaps itself; a run missed while down runs once at start;\n" +
          "SIGTERM lets running jobs finish within --schedule-grace",
      )
      .addHelpText("after", exitCodeHelp(["ok", "usage", "storage", "internal"])),
    ["repository", "s3", "schedule", "general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { scheduleRunCommand } = await import("./commands/schedule.js");
    setCode(await scheduleRunCommand(opts));
  });
  addOptions(
    schedule
      .command("show")
      .description(
        "print the next run times of every job, in the job's zone (daylight-saving changes included)",
      )
      .option("--count <n>", "how many run times per job (default 5)")
      .addHelpText("after", exitCodeHelp(["ok", "usage"])),
    ["general"],
  ).action(async (opts: Record<string, unknown>) => {
    const { scheduleShowCommand } = await import("./commands/schedule.js");
    setCode(await scheduleShowCommand(opts));
  });

  program
    .command("options")
    .description("list every setting: flag, environment variable, config-file key and default")
    .option("--markdown", "print a Markdown table (as in README.md)")
    .addHelpText("after", exitCodeHelp(["ok"]))
    .action(async (opts: { markdown?: boolean }) => {
      const { optionsCommand } = await import("./commands/options.js");
      setCode(optionsCommand(opts.markdown === true));
    });

  return program;
}
