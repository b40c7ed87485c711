/**
 * The aggregator's Redis side outside the metrics script: one line when
 * Redis goes away and one when it is back (instead of ioredis' unhandled
 * error events), and the window length a namespace's metrics were made with.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Names } from "../../lib/contracts.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import { AGGREGATE_KEYS } from "./script.ts";

/** Logs the first error of an outage and the recovery. */
export function watchRedis(redis: Redis, log: Logger): void {
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) log.warn(`Redis: ${error.message} (retrying)`);
    down = true;
  });
  redis.on("ready", () => {
    if (down) log.info("✅ Redis is back");
    down = false;
  });
}

/**
 * Records `windowMs` as the namespace's window length, or refuses a
 * different one: windows of two lengths would overlap in one series.
 *
 * @throws {ServiceError} when the namespace's metrics use another length.
 */
export async function claimWindowLength(redis: Redis, n: Names, windowMs: number): Promise<void> {
  const key = n.redis(AGGREGATE_KEYS.watermark);
  await redis.hsetnx(key, "window_ms", String(windowMs));
  const stored = Number(await redis.hget(key, "window_ms"));
  if (stored !== windowMs) {
    throw new ServiceError(
      `Cannot aggregate with --window ${windowMs / 1000}s as this namespace's metrics ` +
        `use ${stored / 1000}s windows: use the same --window, or --rebuild`,
    );
  }
}
