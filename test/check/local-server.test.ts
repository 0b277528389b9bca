/** pgha check --pgdata: the server running on a data directory, from its postmaster.pid. */
import { describe, expect, it } from "vitest";
import { parsePostmasterPid, userNameOf } from "../../src/check/local-server.js";

const pidFile = (socket: string, listen: string) =>
  `4242\n/var/lib/postgresql/15/main\n1764610000\n5433\n${socket}\n${listen}\n  5433001  32768\nready   \n`;

describe("parsePostmasterPid", () => {
  it("takes the port and the socket directory", () => {
    expect(parsePostmasterPid(pidFile("/var/run/postgresql", "localhost"))).toEqual({
      pid: 4242,
      port: 5433,
      host: "/var/run/postgresql",
    });
  });

  it("falls back to the listen address where there is no socket", () => {
    expect(parsePostmasterPid(pidFile("", "10.0.0.5"))?.host).toBe("10.0.0.5");
    expect(parsePostmasterPid(pidFile("", "*"))?.host).toBe("localhost");
  });

  it("refuses a file without a pid or port", () => {
    expect(parsePostmasterPid("")).toBeUndefined();
    expect(parsePostmasterPid("4242\n/data\n")).toBeUndefined();
  });
});

describe("userNameOf", () => {
  it("finds the name of a uid in /etc/passwd", () => {
    const passwd =
      "root:x:0:0:root:/root:/bin/bash\npostgres:x:104:110::/var/lib/postgresql:/bin/sh\n";
    expect(userNameOf(passwd, 104)).toBe("postgres");
    expect(userNameOf(passwd, 0)).toBe("root");
    expect(userNameOf(passwd, 7)).toBeUndefined();
  });
});
