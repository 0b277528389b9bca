/** verify.json: what the readers of a chain take from a member's last verify. */
import { describe, expect, it } from "vitest";
import { backupVerifyKey } from "../../src/repository/keys.js";
import {
  readFailedVerifies,
  type VerifyRecord,
  writeVerifyRecord,
} from "../../src/repository/verify-record.js";
import { MemoryStore } from "../../src/storage/memory.js";

const record = (id: string, over: Partial<VerifyRecord>): VerifyRecord => ({
  format: 1,
  kind: "verify",
  id,
  time: "2026-12-02T02:00:00.000Z",
  ok: true,
  objects: 1,
  hashed: 1,
  findings: [],
  ...over,
});

describe("readFailedVerifies", () => {
  it("any: every failed record; data: only those whose data failed (older records: by ok)", async () => {
    const store = new MemoryStore();
    const put = (r: VerifyRecord) => writeVerifyRecord(store, backupVerifyKey("c", r.id), r);
    await put(record("A", { ok: false, restorable: false, dataOk: true })); // its own WAL only
    await put(record("B", { ok: false, dataOk: false })); // a corrupt bundle
    await put(record("C", { ok: false })); // written before dataOk
    await put(record("D", {}));
    const ids = ["A", "B", "C", "D", "E"]; // E: never verified
    expect([...(await readFailedVerifies(store, "c", ids, "any"))]).toEqual(["A", "B", "C"]);
    expect([...(await readFailedVerifies(store, "c", ids, "data"))]).toEqual(["B", "C"]);
  });
});
