/** What pgha reads from the server (backup_label), and how long it waits to connect. */
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { connectTimeoutOf, PgServer, parseBackupLabel } from "../../src/pg/server.js";
import { parseLsn } from "../../src/wal/names.js";

describe("backup labels", () => {
  it("reads LSNs and backup labels", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    const label = parseBackupLabel(
      "START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\nCHECKPOINT LOCATION: 0/9000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-11-21 22:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n",
    );
    expect(label).toEqual({ startWal: "000000010000000000000009", timeline: 1, fromStandby: true });
  });
});

describe("connecting", () => {
  it("takes libpq's connect_timeout (conninfo, then PGCONNECT_TIMEOUT), else 30 s", () => {
    expect(connectTimeoutOf(undefined, {})).toBe(30_000);
    expect(connectTimeoutOf("5", { PGCONNECT_TIMEOUT: "9" })).toBe(5000);
    expect(connectTimeoutOf(undefined, { PGCONNECT_TIMEOUT: "9" })).toBe(9000);
    expect(connectTimeoutOf("1", {})).toBe(2000);
    expect(connectTimeoutOf("0", {})).toBe(0);
  });

  it("gives up on a server that accepts the connection and never answers, with a clear error", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    const started = Date.now();
    try {
      await expect(
        PgServer.connect(`postgresql://nobody@127.0.0.1:${port}/db?connect_timeout=2`),
      ).rejects.toThrow(/cannot connect to PostgreSQL: .*timeout/i);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.close();
    }
  });
});
