/**
 * Redis connections (ioredis). The named import is the one that type-checks
 * under Deno.
 *
 * @module
 */

import "./sealed_env.ts";
import { Redis } from "ioredis";
import type { Config } from "./config.ts";

export type { Redis };

export interface RedisOptions {
  /** Fail commands at once while disconnected instead of queueing (dashboard). */
  failFast?: boolean;
}

/**
 * @example
 * ```ts ignore
 * import { loadConfig } from "./config.ts";
 * import { createRedis } from "./redis.ts";
 * const redis = createRedis(loadConfig());
 * await redis.ping();
 * redis.disconnect();
 * ```
 */
export function createRedis(config: Config, { failFast = false }: RedisOptions = {}): Redis {
  return new Redis(config.redisUrl, {
    lazyConnect: false,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 0 : 20,
    connectTimeout: 3000,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 3000),
  });
}
