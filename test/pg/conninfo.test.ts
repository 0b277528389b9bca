/** --pg-conn in libpq's keyword/value form reads as the same settings as its URI. */
import { parse } from "pg-connection-string";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { libpqEnv } from "../../src/pg/client-tools.js";
import { conninfoUri } from "../../src/pg/conninfo.js";

describe("conninfoUri", () => {
  it("keeps a URI as it is", () => {
    expect(conninfoUri("postgresql://u@h:5433/db")).toBe("postgresql://u@h:5433/db");
    expect(conninfoUri(" postgres://h/db ")).toBe("postgres://h/db");
  });

  it("reads keyword=value pairs, quoted values and a socket directory as host", () => {
    const parsed = parse(
      conninfoUri("host=/var/run/postgresql port=5433 dbname=app user=postgres password='a b\\'c'"),
    );
    expect(parsed).toMatchObject({
      host: "/var/run/postgresql",
      port: "5433",
      database: "app",
      user: "postgres",
      password: "a b'c",
    });
    expect(parse(conninfoUri("host = db.internal  application_name=pgha"))).toMatchObject({
      host: "db.internal",
      application_name: "pgha",
    });
  });

  it("gives child programs the same libpq variables for both forms", () => {
    const keyword = libpqEnv("host=/tmp port=5433 dbname=app user=postgres", {});
    expect(keyword).toMatchObject({
      PGHOST: "/tmp",
      PGPORT: "5433",
      PGDATABASE: "app",
      PGUSER: "postgres",
    });
  });

  it("takes an empty quoted value, as libpq does", () => {
    expect(parse(conninfoUri("sslmode='' port=5433"))).toMatchObject({ port: "5433" });
  });

  it.each(["base", "host='unterminated", "=x", "password=secret host"])(
    "refuses %j with a usage error that does not repeat the text",
    (text) => {
      expect(() => conninfoUri(text)).toThrow(UsageError);
      expect(() => conninfoUri(text)).not.toThrow(/secret/);
    },
  );
});
