/**
 * A restore, standby or drill of a --cluster the repository does not hold is "not found"
 * (exit 13, naming the clusters it has), not "the target cannot be reached" (exit 11):
 * issue 12, point 11.
 */
import { describe, expect, it } from "vitest";
import { NotFoundInRepoError } from "../../src/errors.js";
import { memoryLogger } from "../../src/log.js";
import { identityKey } from "../../src/repository/keys.js";
import { planFromRepository } from "../../src/restore/apply.js";
import { MemoryStore } from "../../src/storage/memory.js";

const latest = {
  target: { kind: "latest" },
  timeline: "latest",
  exclusive: false,
  action: "pause",
} as Parameters<typeof planFromRepository>[1];

describe("planFromRepository of a cluster the repository does not hold", () => {
  it("is not found (exit 13) and names the clusters the repository has", async () => {
    const store = new MemoryStore();
    await store.put(identityKey("main"), Buffer.from("{}"));
    const planned = planFromRepository({ store, cluster: "mian", log: memoryLogger() }, latest);
    await expect(planned).rejects.toBeInstanceOf(NotFoundInRepoError);
    await expect(planned).rejects.toThrow(/holds no cluster 'mian'/);
    await expect(planned).rejects.toMatchObject({ hint: expect.stringMatching(/main/) });
  });

  it("a cluster it holds without backups is still refused as unrestorable", async () => {
    const store = new MemoryStore();
    await store.put(identityKey("main"), Buffer.from("{}"));
    const outcome = await planFromRepository(
      { store, cluster: "main", log: memoryLogger() },
      latest,
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.refusal.reasons.join()).toMatch(/no backups/);
  });
});
