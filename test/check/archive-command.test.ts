/**
 * pgha check reads archive_command as the shell runs it and compares where its wal-push
 * stores WAL with the repository and cluster check runs against (issue 13, point 2).
 */
import { describe, expect, it } from "vitest";
import {
  archiveCallEnv,
  archiveTargetOf,
  compareArchiveTargets,
  parseArchiveCommand,
  splitShellCommands,
} from "../../src/check/archive-command.js";
import { resolveConfig } from "../../src/config/load.js";

function pghaCall(text: string) {
  const call = parseArchiveCommand(text);
  if (call.kind !== "pgha") throw new Error(`not a pgha call: ${call.reason}`);
  return call;
}

describe("splitShellCommands", () => {
  it("splits at operators and keeps quoted words whole", () => {
    const commands = splitShellCommands(
      `test ! -f /x/%f && PGHA_REPO='/srv/my repo' "/opt/pgha/bin/pgha" wal-push %p; echo "a;b"`,
    );
    expect(commands.map((c) => c.words)).toEqual([
      ["test", "!", "-f", "/x/%f"],
      ["/opt/pgha/bin/pgha", "wal-push", "%p"],
      ["echo", "a;b"],
    ]);
    expect(commands[1]?.assignments).toEqual({ PGHA_REPO: "/srv/my repo" });
  });

  it("reads backslashes and double quotes as sh does; a quoted NAME= is no assignment", () => {
    const [command] = splitShellCommands(`X="a\\"b" 'Y=1' pgha\\ x "c\\d"`);
    expect(command?.assignments).toEqual({ X: 'a"b' });
    expect(command?.words).toEqual(["Y=1", "pgha x", "c\\d"]);
  });

  it("marks words with expansions", () => {
    const [command] = splitShellCommands(`PGHA_REPO=$HOME/r pgha wal-push %p --cluster "$C"`);
    expect(command?.expanded).toEqual(["PGHA_REPO=$HOME/r", "$C"]);
  });
});

describe("parseArchiveCommand", () => {
  it.each([
    ["pgha wal-push %p", "pgha"],
    ["/usr/local/bin/pgha wal-push %p", "/usr/local/bin/pgha"],
    ["PGHA_NODE='/usr/bin/node' '/opt/pgha/bin/pgha' wal-push %p", "/opt/pgha/bin/pgha"],
    ["node /opt/pgha/bin/pgha.mjs wal-push %p", "/opt/pgha/bin/pgha.mjs"],
    ["exec env PGHA_CLUSTER=a pgha wal-push %p", "pgha"],
  ])("finds the wal-push call in %s", (text, program) => {
    const call = pghaCall(text);
    expect(call.program).toBe(program);
    expect(call.positionals).toEqual(["%p"]);
    expect(call.problems).toEqual([]);
  });

  it("reads setting flags in both spellings, and the variables set in front", () => {
    const call = pghaCall(
      "PGHA_S3_ENDPOINT=http://minio:9000 pgha wal-push --repo s3://bkt/p --cluster=db1 --config /etc/x.json %p",
    );
    expect(call.flags).toEqual({ repo: "s3://bkt/p", cluster: "db1", config: "/etc/x.json" });
    expect(call.env).toEqual({ PGHA_S3_ENDPOINT: "http://minio:9000" });
  });

  it.each([
    ["", "archive_command is empty"],
    ["cp %p /mnt/archive/%f", "archive_command does not call pgha wal-push"],
    ["/bin/true", "archive_command does not call pgha wal-push"],
    ["pgha wal-fetch %f %p", "archive_command calls 'pgha wal-fetch', not 'pgha wal-push'"],
    ["pgha", "archive_command calls pgha without a command"],
  ])("says why %j is not a pgha archive_command", (text, reason) => {
    expect(parseArchiveCommand(text)).toEqual({ kind: "other", reason });
  });

  it("names what wal-push would refuse", () => {
    expect(pghaCall("pgha wal-push --bogus 1 %p").problems).toEqual([
      "wal-push takes no flag --bogus",
    ]);
    expect(pghaCall("pgha wal-push pg_wal/x").problems).toEqual([
      "wal-push must get exactly %p, not 'pg_wal/x'",
    ]);
    expect(pghaCall("pgha wal-push %p --cluster").problems).toEqual(["--cluster has no value"]);
  });
});

describe("where the archive_command's wal-push stores WAL", () => {
  const own = archiveTargetOf(
    resolveConfig({ flags: { repo: "/srv/pgha", cluster: "main" }, env: {}, file: undefined }),
  );
  const targetOf = (text: string, serverEnv?: Record<string, string>) => {
    const call = pghaCall(text);
    const { config: _, ...flags } = call.flags;
    return archiveTargetOf(
      resolveConfig({ flags, env: archiveCallEnv(call, serverEnv), file: undefined }),
    );
  };

  it("matches when flags, the line's variables or the server's environment name the same", () => {
    expect(compareArchiveTargets(own, targetOf("pgha wal-push --repo /srv/pgha %p"))).toEqual([]);
    expect(
      compareArchiveTargets(own, targetOf("PGHA_REPO=file:///srv/pgha pgha wal-push %p")),
    ).toEqual([]);
    expect(
      compareArchiveTargets(own, targetOf("pgha wal-push %p", { PGHA_REPO: "/srv/pgha" })),
    ).toEqual([]);
  });

  it("names another repository or cluster; the line's own settings win over the server's", () => {
    expect(
      compareArchiveTargets(own, targetOf("pgha wal-push --cluster other --repo /srv/pgha %p")),
    ).toEqual(["archive_command stores WAL as cluster 'other', this check's cluster is 'main'"]);
    expect(
      compareArchiveTargets(
        own,
        targetOf("PGHA_REPO=/srv/old pgha wal-push %p", { PGHA_REPO: "/srv/pgha" }),
      ),
    ).toEqual([
      "archive_command stores WAL in file:///srv/old, this check's repository is file:///srv/pgha",
    ]);
  });

  it("counts the S3 endpoint as part of the repository", () => {
    const s3 = (endpoint: string) =>
      archiveTargetOf(
        resolveConfig({
          flags: { repo: "s3://bkt/p", s3Endpoint: endpoint },
          env: {},
          file: undefined,
        }),
      );
    expect(compareArchiveTargets(s3("http://a:9000"), s3("http://b:9000"))).toEqual([
      "archive_command stores WAL in s3://bkt/p at http://b:9000, this check's repository is s3://bkt/p at http://a:9000",
    ]);
  });
});
