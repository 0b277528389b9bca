/**
 * Typed errors and the ONE exit-code table.
 *
 * The core throws these; only bin/ (through src/cli/run.ts) turns them into an exit code.
 * A user-facing error prints one lowercase line plus an optional `HINT:` line; an
 * internal error (anything that is not a PghaError) prints its stack.
 *
 * Every code except `failClosed` is below 126: PostgreSQL treats an archive_command or
 * restore_command exit code above 125 as fatal, so that range is reserved for the one
 * case where pgha wants exactly that (wal-fetch during archive recovery).
 */

export interface ExitCodeRow {
  readonly code: number;
  readonly name: string;
  readonly meaning: string;
}

/**
 * Every exit code, documented: the only place the numbers are written. Rendered into
 * `--help` and README.md (scripts/update-readme.mjs). bin/pgha.mjs repeats two of them
 * because it runs when this module cannot be loaded; test/errors.test.ts checks them.
 */
export const EXIT_CODE_TABLE = [
  {
    code: 0,
    name: "ok",
    meaning: "success (wal-push: stored and verified, or already archived)",
  },
  {
    code: 1,
    name: "notFound",
    meaning:
      "wal-fetch: the WAL file is not in the repository (PostgreSQL's 'not available'); also any wal-fetch failure when standby.signal is present",
  },
  { code: 2, name: "usage", meaning: "bad command line, option value or config file" },
  {
    code: 3,
    name: "refused",
    meaning:
      "input refused: not a WAL file name, not a regular file, a segment whose header does not match its name, or a state pgha will not act on (archiving off, a database that exists)",
  },
  {
    code: 4,
    name: "clusterMismatch",
    meaning:
      "the segment belongs to another cluster (system identifier or segment size differ from the repository's)",
  },
  {
    code: 5,
    name: "walConflict",
    meaning:
      "that WAL name is already archived with different content; nothing was overwritten (on a store without conditional writes, a racing push's own copy stays beside the other, and wal-fetch names both)",
  },
  {
    code: 6,
    name: "integrity",
    meaning:
      "checksum or size mismatch: stored data is corrupt or was not stored as sent; an encrypted object that fails authentication (damaged, substituted, or for keys the identity does not hold)",
  },
  {
    code: 7,
    name: "storage",
    meaning: "the repository storage failed (after retries) or refused access",
  },
  { code: 8, name: "localIo", meaning: "a local file could not be read or written" },
  { code: 9, name: "locked", meaning: "the repository or cluster is locked by another pgha run" },
  {
    code: 10,
    name: "postgres",
    meaning: "PostgreSQL refused the connection or failed a query (or is not set up as required)",
  },
  {
    code: 11,
    name: "unrestorable",
    meaning:
      "the restore target cannot be reached: no backup fits it, or WAL it needs is missing (the gaps are listed); nothing was downloaded",
  },
  {
    code: 12,
    name: "drillFailed",
    meaning:
      "a restore drill ran but did not pass: the server did not come up, or a check failed (the report says which)",
  },
  {
    code: 13,
    name: "notFoundInRepo",
    meaning: "no such backup, dump set or cluster in the repository (the message says what it has)",
  },
  {
    code: 14,
    name: "thresholdBreached",
    meaning:
      "status: a threshold (--max-rpo, --max-backup-age, --max-drill-age) is breached; one line each says which",
  },
  {
    code: 20,
    name: "notArchiving",
    meaning:
      "check: the server does not archive into this repository (archive_mode off, or archive_command does not call pgha wal-push with the same repository and cluster)",
  },
  {
    code: 21,
    name: "walNotArchived",
    meaning:
      "check: the WAL segment pg_switch_wal() closed did not reach the repository within --timeout",
  },
  { code: 70, name: "internal", meaning: "internal error (a bug): the stack trace is printed" },
  {
    code: 126,
    name: "failClosed",
    meaning:
      "wal-fetch could not deliver a file that may exist (storage or integrity failure) during archive recovery: PostgreSQL stops recovery instead of ending it early",
  },
] as const satisfies readonly ExitCodeRow[];

type ExitCodeEntry = (typeof EXIT_CODE_TABLE)[number];
export type ExitCodeName = ExitCodeEntry["name"];

/** The table as a map: EXIT_CODES.notFound === 1. */
export const EXIT_CODES = Object.fromEntries(
  EXIT_CODE_TABLE.map((row) => [row.name, row.code]),
) as {
  readonly [Row in ExitCodeEntry as Row["name"]]: Row["code"];
};

export class PghaError extends Error {
  readonly exit: ExitCodeName;
  readonly hint: string | undefined;
  /** With --json, printed beside the error object (restore plan: the refusal's gaps). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(
    exit: ExitCodeName,
    message: string,
    options?: { hint?: string; cause?: unknown; details?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exit = exit;
    this.hint = options?.hint;
    this.details = options?.details;
  }
}

export class UsageError extends PghaError {
  constructor(message: string, hint?: string) {
    super("usage", message, hint === undefined ? undefined : { hint });
  }
}

/** A key, backup or WAL file that is not in the repository. */
export class NotFoundError extends PghaError {
  constructor(message: string, hint?: string) {
    super("notFound", message, hint === undefined ? undefined : { hint });
  }
}

/** A backup, dump set or cluster the user named that the repository does not hold. */
export class NotFoundInRepoError extends PghaError {
  constructor(message: string, hint?: string) {
    super("notFoundInRepo", message, hint === undefined ? undefined : { hint });
  }
}

/** `put(..., { ifAbsent: true })` found the key already present. */
export class AlreadyExistsError extends PghaError {
  constructor(readonly key: string) {
    super("walConflict", `object already exists: ${key}`);
  }
}

export class RefusedError extends PghaError {
  constructor(message: string, hint?: string) {
    super("refused", message, hint === undefined ? undefined : { hint });
  }
}

export class ClusterMismatchError extends PghaError {
  constructor(message: string, hint?: string) {
    super("clusterMismatch", message, hint === undefined ? undefined : { hint });
  }
}

export class WalConflictError extends PghaError {
  constructor(message: string, hint?: string) {
    super("walConflict", message, hint === undefined ? undefined : { hint });
  }
}

export class IntegrityError extends PghaError {
  constructor(message: string, hint?: string) {
    super("integrity", message, hint === undefined ? undefined : { hint });
  }
}

/**
 * An encrypted object no identity at hand opens (exit 6 like any failed authentication).
 * Reading a repository with the wrong identity fails every object the same way, so a
 * command that skips an unreadable item (a manifest in a listing) stops on this one
 * instead of reporting an empty repository.
 */
export class IdentityMismatchError extends IntegrityError {}

/**
 * Errors that say something about the settings, not about one object: a missing
 * encryption setting (usage) or an identity that opens nothing. Listings stop on them.
 */
export function concernsSettings(error: unknown): boolean {
  return (
    error instanceof IdentityMismatchError || (error instanceof PghaError && error.exit === "usage")
  );
}

/**
 * The storage failed. `transient` says whether retrying may help (5xx, throttling,
 * resets, timeouts); the retry policy only retries transient errors.
 */
export class StorageError extends PghaError {
  readonly transient: boolean;
  /** The object is there but its stored form is damaged (a local file's pgha header). */
  readonly damaged: boolean;
  constructor(
    message: string,
    options: { transient: boolean; damaged?: boolean; hint?: string; cause?: unknown },
  ) {
    super("storage", message, options);
    this.transient = options.transient;
    this.damaged = options.damaged ?? false;
  }
}

export class LocalIoError extends PghaError {
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super("localIo", message, options);
  }
}

export class PostgresError extends PghaError {
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super("postgres", message, options);
  }
}

export class LockedError extends PghaError {
  constructor(message: string, hint?: string) {
    super("locked", message, hint === undefined ? undefined : { hint });
  }
}

export function exitCodeOf(error: unknown): number {
  return error instanceof PghaError ? EXIT_CODES[error.exit] : EXIT_CODES.internal;
}

/** A short description of a Node.js system error, e.g. "permission denied (EACCES)". */
export function describeSystemError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOSPC: "no space left on device",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    EROFS: "read-only file system",
    EEXIST: "already exists",
  };
  if (e && typeof e.code === "string") return `${known[e.code] ?? e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(error);
}

/**
 * A local write into a restore's target that failed: the file it was (the system error's
 * path), and for a permission error what to change.
 */
export function restoreWriteError(dir: string, error: unknown): LocalIoError {
  const e = error as NodeJS.ErrnoException;
  const at = typeof e?.path === "string" && e.path !== dir ? `${e.path}: ` : "";
  const user = process.geteuid?.() === 0 ? "root" : "this user";
  const hint =
    e?.code === "EACCES" || e?.code === "EPERM"
      ? `pgha runs as ${user}: everything under ${dir} must be writable by it (run pgha as the data directory's owner, or as root)`
      : e?.code === "ENOSPC"
        ? `make room on the file system of ${dir} (the restore needs the backup's size there), then restore again`
        : undefined;
  return new LocalIoError(`cannot restore into ${dir}: ${at}${describeSystemError(error)}`, {
    cause: error,
    ...(hint === undefined ? {} : { hint }),
  });
}

/**
 * A restore that met damaged data (an IntegrityError without a hint of its own): what to
 * do about it.
 */
export function withRestoreHint(error: unknown, backupId: string): unknown {
  if (!(error instanceof IntegrityError) || error.hint !== undefined) return error;
  return new IntegrityError(
    error.message,
    `the backup's stored data does not match what it recorded, so it cannot be restored as it is: 'pgha verify --backup ${backupId}' lists what is damaged; restore another backup (pgha backup list; --backup ID)`,
  );
}

/**
 * An object (a manifest) that does not parse or fails its checksum (IntegrityError), or
 * whose stored form the store cannot read (a local file's corrupt header: a StorageError
 * marked damaged): that object is damaged. A failing store is not, nor the wrong identity
 * or settings (concernsSettings), which fail every object alike.
 */
export function isDamagedObject(error: unknown): error is Error {
  if (concernsSettings(error)) return false;
  return (
    error instanceof IntegrityError || (error instanceof StorageError && error.damaged === true)
  );
}

/**
 * Whether a listed item (a backup or dump set) whose manifest failed to read is left out
 * of a listing or plan with a warning: its manifest is damaged, or it went meanwhile (a
 * prune). Anything else (the storage failing after its retries, wrong settings) fails the
 * command: a prune that passed over a backup it could not read would delete the WAL that
 * backup needs, and a restore plan would refuse a sound chain.
 */
export function leftOutWhenUnread(error: unknown): boolean {
  return isDamagedObject(error) || error instanceof NotFoundInRepoError;
}
