/**
 * How a stream pump (./stream.ts) lives with PostgreSQL or Kafka being away:
 * a failure of either is a {@link Fault}, retried with backoff (0.5 s doubling
 * to 15 s) and one line per attempt, and the pump resumes from the last
 * acknowledged row; a drain gives up after a while. Any other error is not a
 * Fault and stops the stream.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import { isConnectionError } from "../../lib/db.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";

/** The service a fault is about. */
export type Kind = "kafka" | "postgres";

/** A service that is unreachable for now; the pump retries. */
export class Fault extends Error {
  constructor(readonly kind: Kind, override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Runs a PostgreSQL call, turning connection failures into retryable faults. */
export async function pg<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw isConnectionError(error) ? new Fault("postgres", error) : error;
  }
}

export interface FaultRetryDeps {
  stream: string;
  log: Logger;
  signal: AbortSignal;
  drain: boolean;
  /** A drain gives up after PostgreSQL or Kafka was unreachable this long. */
  drainGiveUpMs: number;
  /** Called when PostgreSQL answers again after a failure (to re-arm LISTEN). */
  onPostgresRecovered?: () => void;
  /** The acknowledged cursor, for the log lines. */
  position(): string;
}

/**
 * `withRetry(fn)` runs `fn` until it does not fail with a {@link Fault}
 * (undefined once the signal aborted); `failing()` names the service that
 * failed last, until one answers again.
 *
 * @example
 * ```ts ignore
 * const { withRetry, failing } = createFaultRetry({ stream, log, signal, drain, ... });
 * const cursor = await withRetry(() => pg(source.readCursor));
 * ```
 */
export function createFaultRetry(deps: FaultRetryDeps): {
  withRetry<T>(fn: () => Promise<T>): Promise<T | undefined>;
  failing(): Kind | null;
} {
  const { stream, log, signal, drain, drainGiveUpMs, onPostgresRecovered } = deps;
  let failing: Kind | null = null;
  let failingSince = 0;

  /** Retries faults with backoff until they pass (a drain gives up after a while). */
  async function withRetry<T>(fn: () => Promise<T>): Promise<T | undefined> {
    let delay = 500;
    for (;;) {
      try {
        const result = await fn();
        if (failing) recovered();
        return result;
      } catch (error) {
        if (!(error instanceof Fault)) throw error;
        if (signal.aborted) return undefined;
        const now = Date.now();
        if (failing === null) failingSince = now;
        failing = error.kind;
        const service = error.kind === "kafka" ? "Kafka" : "PostgreSQL";
        if (drain && now - failingSince > drainGiveUpMs) {
          throw new ServiceError(
            `Cannot publish ${stream} as ${service} stayed unreachable for ${
              Math.round((now - failingSince) / 1000)
            } s: ${error.message}`,
          );
        }
        log.warn(
          `${service} unreachable for ${stream} (${error.message}); cursor stays at ${deps.position()}, retrying in ${
            delay / 1000
          } s`,
        );
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 15_000);
      }
    }
  }

  function recovered() {
    log.info(`✅ ${failing === "kafka" ? "Kafka" : "PostgreSQL"} reachable again for ${stream}`);
    if (failing === "postgres") onPostgresRecovered?.();
    failing = null;
  }

  return { withRetry, failing: () => failing };
}
