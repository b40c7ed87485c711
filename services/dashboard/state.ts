/**
 * Builds the {@link DashboardState} from Redis and the warehouse. It never
 * throws: a dependency that fails keeps its last good numbers on screen and
 * is reported in the status panel, and it is read again next time, so the
 * page recovers by itself when the dependency returns.
 *
 * @module
 */

import { redact } from "../../lib/config.ts";
import type { Names } from "../../lib/contracts.ts";
import type { Sql } from "../../lib/db.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import { averageCents } from "./format.ts";
import { type History, readHistory } from "./history.ts";
import type { DashboardState } from "./model.ts";
import { readRedisSnapshot, type RedisSnapshot } from "./snapshot.ts";
import { buildStatus, eventsPerSecond, type Reachability } from "./status.ts";

export interface StateReaderOptions {
  redis: Redis;
  warehouse: Sql;
  names: Names;
  log: Logger;
  /** Re-query the warehouse at most this often for pushed states (default 2000 ms). */
  historyTtlMs?: number;
  /** Give up on one warehouse query after this long (default 3000 ms). */
  queryTimeoutMs?: number;
  windowCount?: number;
  now?: () => number;
}

export interface StateReader {
  /** The whole state; history may be up to `historyTtlMs` old. */
  read(): Promise<DashboardState>;
  /** A fresh history read; throws a clear error when the warehouse cannot answer. */
  readHistory(options?: { limit?: number; hours?: number }): Promise<History>;
  /** Whether Redis answered the last read. */
  redis(): Reachability;
  /** Whether the warehouse answered the last read. */
  warehouse(): Reachability;
}

const EMPTY_SNAPSHOT: RedisSnapshot = {
  totals: { events: 0, transactions: 0, revenueCents: 0, itemsSold: 0, lateEvents: 0 },
  categories: [],
  behavior: [],
  windows: [],
  heartbeats: {},
  lastUpdate: null,
};

/**
 * @example
 * ```ts ignore
 * const reader = createStateReader({ redis, warehouse, names: names("demo"), log });
 * const state = await reader.read();
 * ```
 */
export function createStateReader(options: StateReaderOptions): StateReader {
  const { redis, warehouse, names, log, historyTtlMs = 2000, queryTimeoutMs = 3000 } = options;
  const { windowCount = 30, now = () => Date.now() } = options;
  let snapshot = EMPTY_SNAPSHOT;
  let redisState: Reachability = { ok: true };
  let history: History | undefined;
  let historyAt = -Infinity;
  let historyInFlight: Promise<void> | undefined;
  let historyTried = false;
  let warehouseState: Reachability = { ok: true };

  async function readRedis(): Promise<void> {
    try {
      await connected(redis, queryTimeoutMs);
      snapshot = await readRedisSnapshot(redis, names, { windowCount });
      if (!redisState.ok) log.info("✅ Redis is back: metrics are live again");
      redisState = { ok: true };
    } catch (error) {
      const message = describe(error);
      if (redisState.ok) log.warn(`Cannot read metrics from Redis: ${message}`);
      redisState = { ok: false, error: message };
    }
  }

  async function queryHistory(limit?: number, hours?: number): Promise<History> {
    try {
      const result = await withTimeout(
        readHistory(warehouse, { limit, hours, now: now() }),
        queryTimeoutMs,
      );
      if (!warehouseState.ok) log.info("✅ Warehouse is back");
      warehouseState = result.tablesMissing
        ? { ok: true, note: "Reachable, but not set up yet (start `deno task consume`)" }
        : { ok: true };
      return result;
    } catch (error) {
      const message = describe(error);
      if (warehouseState.ok) log.warn(`Cannot read the warehouse: ${message}`);
      warehouseState = { ok: false, error: message };
      throw new Error(`Cannot read the warehouse as it does not answer: ${message}`);
    }
  }

  /**
   * Refreshes the cached history when stale, one query at a time; failures are
   * logged once per outage by queryHistory and leave the last good history.
   */
  function refreshHistory(): Promise<void> {
    if (historyInFlight) return historyInFlight;
    if (now() - historyAt < historyTtlMs) return Promise.resolve();
    historyInFlight = queryHistory()
      .then((result) => {
        history = result;
      }, () => {})
      .finally(() => {
        historyAt = now();
        historyInFlight = undefined;
        historyTried = true;
      });
    return historyInFlight;
  }

  async function read(): Promise<DashboardState> {
    const refreshing = refreshHistory();
    // Only the first read waits for the warehouse (at most queryTimeoutMs), so that the first
    // page has its history; after that the Redis numbers never wait for a slow warehouse query:
    // a frame shows the last history while the refresh runs in the background.
    await (historyTried ? readRedis() : Promise.all([readRedis(), refreshing]));
    const at = now();
    const { totals } = snapshot;
    return {
      at: new Date(at).toISOString(),
      lastUpdate: snapshot.lastUpdate,
      kpis: {
        ...totals,
        aovCents: averageCents(totals.revenueCents, totals.transactions),
        eventsPerSecond: eventsPerSecond(snapshot.heartbeats.aggregate, at),
      },
      windows: snapshot.windows,
      categories: snapshot.categories,
      behavior: snapshot.behavior,
      hours: history?.hours ?? [],
      latestEvents: history?.latestEvents ?? [],
      status: buildStatus({
        redis: redisState,
        warehouse: warehouseState,
        heartbeats: snapshot.heartbeats,
        now: at,
      }),
    };
  }

  return {
    read,
    readHistory: ({ limit, hours } = {}) => queryHistory(limit, hours),
    redis: () => redisState,
    warehouse: () => warehouseState,
  };
}

/** An error as one line without credentials. */
export function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return redact(message.split("\n")[0]!.trim() || "unknown error");
}

/**
 * Waits (up to `ms`) while a connection attempt is in progress: a fail-fast
 * client would otherwise fail the very first read after start. While Redis
 * is down between attempts, it returns at once and the read fails fast.
 */
function connected(redis: Redis, ms: number): Promise<void> {
  if (redis.status !== "connecting" && redis.status !== "connect") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    redis.once("ready", done);
    redis.once("close", done);
    function done() {
      clearTimeout(timer);
      redis.off("ready", done);
      redis.off("close", done);
      resolve();
    }
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  // A late answer after the timeout must not surface as an unhandled rejection.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
