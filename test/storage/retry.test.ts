import { describe, expect, it } from "vitest";
import { StorageError, UsageError } from "../../src/errors.js";
import { type RetryPolicy, withRetry } from "../../src/storage/retry.js";

function fakePolicy(totalMs: number): RetryPolicy & { slept: number[] } {
  let clock = 0;
  const slept: number[] = [];
  return {
    slept,
    totalMs,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    now: () => clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
    },
    random: () => 1,
  };
}

describe("withRetry", () => {
  it("retries transient failures with growing, capped delays until success", async () => {
    const policy = fakePolicy(60_000);
    let calls = 0;
    const result = await withRetry(policy, "op", async () => {
      calls++;
      if (calls < 6) throw new StorageError("503", { transient: true });
      return "done";
    });
    expect(result).toBe("done");
    expect(policy.slept).toEqual([100, 200, 400, 800, 1000]);
  });

  it("stops within the total time budget and says how many attempts it made", async () => {
    const policy = fakePolicy(2000);
    const error = await withRetry(policy, "GET x", async () => {
      throw new StorageError("connection reset", { transient: true });
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    // Waits of 100, 200, 400 and 800 ms, then the rest of the budget (500, not 1000): the
    // last attempt starts at its end.
    expect((error as Error).message).toMatch(
      /^GET x failed after 6 attempts in 2\.0s: connection reset/,
    );
    expect(policy.slept).toEqual([100, 200, 400, 800, 500]);
  });

  it("does not retry permanent failures", async () => {
    const policy = fakePolicy(60_000);
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new StorageError("access denied", { transient: false });
    };
    await expect(withRetry(policy, "op", fail)).rejects.toThrow("access denied");
    await expect(
      withRetry(policy, "op", async () => {
        calls++;
        throw new UsageError("bad");
      }),
    ).rejects.toBeInstanceOf(UsageError);
    expect(calls).toBe(2);
    expect(policy.slept).toEqual([]);
  });
});
