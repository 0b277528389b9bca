/**
 * Pure: what an archive_command string asks pgha to do, read the way /bin/sh would run it
 * (PostgreSQL hands the string to the shell): which simple command calls `pgha wal-push`,
 * the variables it sets in front (`PGHA_REPO=... pgha ...`, `env PGHA_CLUSTER=... pgha`),
 * and the setting flags it passes (`--repo`, `--cluster`, `--config`, every flag of the
 * option table). `pgha check` resolves these like wal-push would and compares the
 * repository and cluster with its own.
 *
 * Not a shell: parameter expansion ($VAR, `...`) is not performed; a word that uses it is
 * reported, because what it expands to is unknown here.
 */
import type { Config } from "../config/load.js";
import { OPTION_KEYS, OPTIONS, type OptionKey, type SettingFlags } from "../config/options.js";

/** One simple command: the variables assigned in front of it and its words. */
export interface SimpleCommand {
  readonly assignments: Readonly<Record<string, string>>;
  readonly words: readonly string[];
  /** Words (or assigned values) that hold an expansion the shell would perform. */
  readonly expanded: readonly string[];
}

export type ArchiveCall =
  | {
      readonly kind: "pgha";
      /** The program as written: pgha, /usr/local/bin/pgha, node /x/bin/pgha.mjs. */
      readonly program: string;
      /** Variables the command line itself sets for pgha. */
      readonly env: Readonly<Record<string, string>>;
      /** Setting flags by option key, plus `config`. */
      readonly flags: SettingFlags;
      readonly positionals: readonly string[];
      /** What wal-push would refuse. */
      readonly problems: readonly string[];
      /** What this reading cannot know (shell expansions). */
      readonly unknowns: readonly string[];
    }
  | { readonly kind: "other"; readonly reason: string };

const OPERATORS = new Set([";", "&", "|", "(", ")", "\n"]);
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=/;

interface RawWord {
  text: string;
  /** The word up to its first quote: only there does `NAME=` make an assignment. */
  unquotedHead: string;
  quoted: boolean;
  expands: boolean;
}

/** Splits a shell command line into simple commands (split at ; & | && || ( ) and newlines). */
export function splitShellCommands(text: string): SimpleCommand[] {
  const commands: SimpleCommand[] = [];
  let words: RawWord[] = [];
  let word: RawWord | undefined;
  const current = (): RawWord => {
    word ??= { text: "", unquotedHead: "", quoted: false, expands: false };
    return word;
  };
  const endWord = () => {
    if (word) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(toSimpleCommand(words));
    words = [];
  };
  const add = (ch: string, inQuotes: boolean) => {
    const w = current();
    if (inQuotes) w.quoted = true;
    else if (!w.quoted) w.unquotedHead += ch;
    w.text += ch;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? "";
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      current().quoted = true;
      current().text += end === -1 ? text.slice(i + 1) : text.slice(i + 1, end);
      i = end === -1 ? text.length : end;
    } else if (ch === '"') {
      current().quoted = true;
      for (i++; i < text.length && text[i] !== '"'; i++) {
        const c = text[i] ?? "";
        if (c === "\\" && /[$`"\\\n]/.test(text[i + 1] ?? "")) add(text[++i] ?? "", true);
        else {
          if (c === "$" || c === "`") current().expands = true;
          add(c, true);
        }
      }
    } else if (ch === "\\") {
      const next = text[++i];
      if (next !== undefined && next !== "\n") add(next, true);
    } else if (ch === " " || ch === "\t") endWord();
    else if (OPERATORS.has(ch)) endCommand();
    else if (ch === "#" && word === undefined) {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end - 1;
    } else {
      if (ch === "$" || ch === "`") current().expands = true;
      add(ch, false);
    }
  }
  endCommand();
  return commands;
}

function toSimpleCommand(raw: readonly RawWord[]): SimpleCommand {
  const assignments: Record<string, string> = {};
  const words: string[] = [];
  const expanded: string[] = [];
  for (const w of raw) {
    const name = ASSIGNMENT.exec(w.unquotedHead)?.[1];
    if (words.length === 0 && name !== undefined) {
      assignments[name] = w.text.slice(name.length + 1);
      if (w.expands) expanded.push(w.text);
      continue;
    }
    // `env VAR=value pgha ...` and `exec pgha ...` set the same environment.
    if (words.length === 0 && (w.text === "exec" || w.text === "env") && !w.quoted) continue;
    if (w.expands) expanded.push(w.text);
    words.push(w.text);
  }
  return { assignments, words, expanded };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

const FLAG_KEYS = new Map<string, OptionKey | "config">([
  ["config", "config"],
  ...OPTION_KEYS.map((key): [string, OptionKey] => [OPTIONS[key].name, key]),
]);

/** The simple command of `text` that runs `pgha wal-push`, read into its settings. */
export function parseArchiveCommand(text: string): ArchiveCall {
  if (text.trim() === "") return { kind: "other", reason: "archive_command is empty" };
  const commands = splitShellCommands(text);
  for (const command of commands) {
    let at = 0;
    const first = command.words[0] ?? "";
    if (/^node(js)?$/.test(basename(first))) at = 1;
    const program = command.words[at] ?? "";
    if (!/^pgha(\.mjs)?$/.test(basename(program))) continue;
    if (command.words[at + 1] !== "wal-push") {
      const what = command.words[at + 1];
      return {
        kind: "other",
        reason:
          what === undefined
            ? "archive_command calls pgha without a command"
            : `archive_command calls 'pgha ${what}', not 'pgha wal-push'`,
      };
    }
    return readWalPushCall(command, at + 2, program);
  }
  return { kind: "other", reason: "archive_command does not call pgha wal-push" };
}

function readWalPushCall(command: SimpleCommand, from: number, program: string): ArchiveCall {
  const problems: string[] = [];
  const unknowns = command.expanded.map(
    (word) => `'${word}' holds a shell expansion this check cannot follow`,
  );
  const flags: Record<string, string> = {};
  const positionals: string[] = [];
  const words = command.words;
  for (let i = from; i < words.length; i++) {
    const word = words[i] ?? "";
    if (!word.startsWith("--")) {
      positionals.push(word);
      continue;
    }
    const eq = word.indexOf("=");
    const name = word.slice(2, eq === -1 ? undefined : eq);
    const key = FLAG_KEYS.get(name);
    const value = eq === -1 ? words[++i] : word.slice(eq + 1);
    if (key === undefined) problems.push(`wal-push takes no flag --${name}`);
    else if (value === undefined) problems.push(`--${name} has no value`);
    else flags[key] = value;
  }
  if (positionals.length !== 1 || positionals[0] !== "%p") {
    problems.push(`wal-push must get exactly %p, not '${positionals.join(" ")}'`);
  }
  return {
    kind: "pgha",
    program,
    env: command.assignments,
    flags,
    positionals,
    problems,
    unknowns,
  };
}

/** Where WAL goes: the repository (with the S3 endpoint, which is part of its name) and cluster. */
export interface ArchiveTarget {
  readonly repository: string;
  readonly cluster: string;
}

/** The target a configuration names (as the repo facts cache names a repository). */
export function archiveTargetOf(config: Pick<Config, "repo" | "s3" | "cluster">): ArchiveTarget {
  // The same bucket and prefix behind another endpoint is another repository.
  const endpoint =
    config.repo.kind === "s3" && config.s3.endpoint ? ` at ${config.s3.endpoint}` : "";
  return { repository: `${config.repo.url}${endpoint}`, cluster: config.cluster };
}

/** What differs between the target check runs against and the archive_command's. */
export function compareArchiveTargets(own: ArchiveTarget, theirs: ArchiveTarget): string[] {
  const differences: string[] = [];
  if (own.repository !== theirs.repository) {
    differences.push(
      `archive_command stores WAL in ${theirs.repository}, this check's repository is ${own.repository}`,
    );
  }
  if (own.cluster !== theirs.cluster) {
    differences.push(
      `archive_command stores WAL as cluster '${theirs.cluster}', this check's cluster is '${own.cluster}'`,
    );
  }
  return differences;
}

/** The environment the archive_command's pgha gets: the server's, then the line's own. */
export function archiveCallEnv(
  call: { readonly env: Readonly<Record<string, string>> },
  serverEnv: Readonly<Record<string, string | undefined>> | undefined,
): Record<string, string | undefined> {
  return { ...(serverEnv ?? {}), ...call.env };
}
