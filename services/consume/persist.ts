/**
 * Retry until it works: the consumer's answer to PostgreSQL or Kafka going
 * away mid-batch. Each failure is one clear line; the batch is held (offsets
 * not committed) until the write succeeds, the attempts run out, or the
 * consumer stops.
 *
 * @module
 */

import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";

export interface PersistOptions {
  /** What is attempted, completing "Cannot ...", e.g. "write the warehouse batch". */
  what: string;
  log: Logger;
  signal?: AbortSignal;
  /** Attempts before the last error is thrown (default: no limit). */
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Called while waiting between attempts (keeps the Kafka session alive). */
  onWait?: () => Promise<unknown> | unknown;
  /** Errors not worth retrying; thrown at once. */
  isFatal?: (error: unknown) => boolean;
}

/** Thrown when the consumer stops while an operation is still failing. */
export class StoppedError extends Error {
  constructor(what: string) {
    super(`Cannot ${what} as the consumer is stopping`);
    this.name = "StoppedError";
  }
}

/**
 * Calls `fn` until it resolves, with exponential backoff (250 ms to 5 s).
 *
 * @example
 * ```ts
 * import { persist } from "./persist.ts";
 * import { silentLogger } from "../../lib/log.ts";
 * await persist(() => Promise.resolve(1), { what: "count", log: silentLogger }); // 1
 * ```
 */
export async function persist<T>(fn: () => Promise<T>, options: PersistOptions): Promise<T> {
  const {
    what,
    log,
    signal,
    attempts = Infinity,
    initialDelayMs = 250,
    maxDelayMs = 5000,
    onWait,
    isFatal = () => false,
  } = options;
  let delay = initialDelayMs;
  // A stop lets the current attempt run (a graceful stop finishes its batch) but no retry.
  for (let attempt = 1;; attempt++) {
    try {
      const value = await fn();
      if (attempt > 1) log.info(`✅ Recovered: ${what} worked on attempt ${attempt}`);
      return value;
    } catch (error) {
      if (isFatal(error) || attempt >= attempts) throw error;
      if (signal?.aborted) throw new StoppedError(what);
      const limit = attempts === Infinity ? "" : `/${attempts}`;
      log.warn(
        `Cannot ${what} (attempt ${attempt}${limit}): ${errorText(error)}; retrying in ${delay} ms`,
      );
      await Promise.allSettled([onWait?.()]);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }
}

/** One line for an error from PostgreSQL, Kafka or Redis. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? `${message} [${code}]` : message;
}
