/**
 * Retry with exponential backoff, for services that are down for a moment.
 *
 * @module
 */

import type { Logger } from "./log.ts";

export interface RetryOptions {
  /** What is being attempted, for the log line ("connect to PostgreSQL at ..."). */
  what: string;
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  log?: Logger;
  /** Errors worth another attempt (default: all); others are thrown at once. */
  retryIf?: (error: unknown) => boolean;
  /** How to wait between attempts (a fake clock in unit tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Calls `fn` until it succeeds or `attempts` run out, then rethrows the last error.
 *
 * @example
 * ```ts
 * import { retry } from "./retry.ts";
 * const value = await retry(() => Promise.resolve(42), { what: "answer" });
 * ```
 */
export async function retry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const {
    what,
    attempts = 6,
    initialDelayMs = 250,
    maxDelayMs = 5000,
    signal,
    log,
    retryIf = () => true,
    sleep: wait = sleep,
  } = options;
  let delay = initialDelayMs;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || signal?.aborted || !retryIf(error)) throw error;
      log?.warn(
        `Cannot ${what} (attempt ${attempt}/${attempts}): ${
          (error as Error).message
        }; retrying in ${delay} ms`,
      );
      await wait(delay, signal);
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
