/**
 * Retry with exponential backoff and full jitter, bounded by a total time budget.
 * Only transient StorageErrors are retried; everything else fails at once. The clock,
 * sleep and randomness are injected so the policy is unit-tested without waiting.
 * Stores do not retry: the retry wrapper (retrying-store.ts) applies this policy.
 */
import { StorageError } from "../errors.js";

export interface RetryPolicy {
  /** Total time budget in ms, from the first attempt; no attempt starts after it. */
  totalMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  onRetry?: (error: StorageError, attempt: number, delayMs: number) => void;
}

export function defaultRetryPolicy(totalMs: number, onRetry?: RetryPolicy["onRetry"]): RetryPolicy {
  return {
    totalMs,
    baseDelayMs: 100,
    maxDelayMs: 5000,
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    random: Math.random,
    ...(onRetry ? { onRetry } : {}),
  };
}

export async function withRetry<T>(
  policy: RetryPolicy,
  what: string,
  attempt: () => Promise<T>,
): Promise<T> {
  const start = policy.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      await waitBeforeRetry(policy, what, error, n, start);
    }
  }
}

/**
 * After failed attempt number `attempt` of an operation whose budget started at `start`:
 * rethrows an error that is not worth retrying, throws a StorageError saying how long it
 * tried once the budget would be exceeded, and otherwise waits the backoff delay.
 */
export async function waitBeforeRetry(
  policy: RetryPolicy,
  what: string,
  error: unknown,
  attempt: number,
  start: number,
): Promise<void> {
  if (!(error instanceof StorageError) || !error.transient) throw error;
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const elapsed = policy.now() - start;
  // The last wait is cut to what is left of the budget, so the last attempt starts at its
  // end at the latest: giving up as soon as a full wait would pass it tried for half the
  // budget or less.
  const delay = Math.min(Math.round(policy.random() * cap), policy.totalMs - elapsed);
  if (elapsed >= policy.totalMs) {
    throw new StorageError(
      `${what} failed after ${attempt} attempt${attempt === 1 ? "" : "s"} in ${(elapsed / 1000).toFixed(1)}s: ${error.message}`,
      {
        transient: true,
        cause: error,
        hint:
          error.hint ??
          "check that the storage is reachable; --retry-timeout sets how long pgha keeps trying",
      },
    );
  }
  policy.onRetry?.(error, attempt, delay);
  await policy.sleep(delay);
}
