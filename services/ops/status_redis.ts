/**
 * Redis as `deno task status` shows it: the metric keys and values, each
 * stage's heartbeat and how old it is, and the dead letter counters.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { names, REDIS_KEYS, type Stage, STAGES } from "../../lib/contracts.ts";
import { createRedis } from "../../lib/redis.ts";
import { errorText, withDeadline } from "./deadline.ts";

export interface HeartbeatStatus {
  stage: Stage;
  /** False for a stage that never wrote a heartbeat in this namespace. */
  present: boolean;
  at: string | null;
  age_s: number | null;
  stale: boolean;
  pid: number | null;
  events: number | null;
  events_per_s: number | null;
  dead_letters: number | null;
  detail: unknown;
}

export interface RedisStatus {
  ok: boolean;
  error?: string;
  totals: Record<string, number>;
  transactions: unknown;
  behavior: unknown;
  products: Record<string, unknown>;
  windows: { count: number; latest: { start: string; fields: Record<string, string> }[] };
  /**
   * Other keys under `metrics:`, e.g. the aggregator's late and expired sums and its
   * watermark: a hash's fields or a string's value, the size of anything else.
   */
  other_keys: { key: string; type: string; value: unknown }[];
  heartbeats: HeartbeatStatus[];
  dead_letters: { total: number; by_source: Record<string, number> };
}

const DEADLINE_MS = 10_000;

/** Metric keys, heartbeats and dead letter counters. */
export async function redisStatus(
  config: Config,
  staleMs: number,
  now: () => number,
): Promise<RedisStatus> {
  const n = names(config.namespace);
  const result: RedisStatus = {
    ok: true,
    totals: {},
    transactions: null,
    behavior: null,
    products: {},
    windows: { count: 0, latest: [] },
    other_keys: [],
    heartbeats: [],
    dead_letters: { total: 0, by_source: {} },
  };
  const redis = createRedis(config, { failFast: true });
  redis.on("error", () => {}); // reported below, once, instead of per reconnect
  try {
    await withDeadline(
      (async () => {
        await new Promise<void>((resolve, reject) => {
          if (redis.status === "ready") return resolve();
          redis.once("ready", () => resolve());
          redis.once("error", reject);
        });
        const totals = await redis.hgetall(n.redis(REDIS_KEYS.totals));
        result.totals = Object.fromEntries(
          Object.entries(totals).sort(([a], [b]) => a.localeCompare(b)).map((
            [k, v],
          ) => [k, Number(v)]),
        );
        result.transactions = parseJson(await redis.get(n.redis(REDIS_KEYS.transactions)));
        result.behavior = parseJson(await redis.get(n.redis(REDIS_KEYS.behavior)));
        const productPrefix = n.redis(REDIS_KEYS.productsPrefix);
        const windowPrefix = n.redis(REDIS_KEYS.windowPrefix);
        const seenPrefix = n.redis(REDIS_KEYS.seenPrefix);
        const known = new Set(
          [REDIS_KEYS.totals, REDIS_KEYS.transactions, REDIS_KEYS.behavior, REDIS_KEYS.windows]
            .map((k) => n.redis(k)),
        );
        for (const key of (await scanKeys(redis, n.redis("metrics:*"))).sort()) {
          if (key.startsWith(productPrefix)) {
            result.products[key.slice(productPrefix.length)] = parseJson(await redis.get(key));
          } else if (
            !known.has(key) && !key.startsWith(windowPrefix) && !key.startsWith(seenPrefix)
          ) {
            result.other_keys.push(await describeKey(redis, key));
          }
        }
        const windowsKey = n.redis(REDIS_KEYS.windows);
        result.windows.count = await redis.zcard(windowsKey);
        for (const member of await redis.zrange(windowsKey, -3, -1)) {
          const fields = await redis.hgetall(`${windowPrefix}${member}`);
          result.windows.latest.push({ start: new Date(Number(member)).toISOString(), fields });
        }
        for (const stage of STAGES) {
          result.heartbeats.push(
            heartbeatStatus(stage, await redis.hgetall(n.heartbeat(stage)), staleMs, now()),
          );
        }
        const dead = await redis.hgetall(n.redis(REDIS_KEYS.deadLetters));
        for (const [source, count] of Object.entries(dead).sort()) {
          result.dead_letters.by_source[source] = Number(count);
          result.dead_letters.total += Number(count);
        }
      })(),
      DEADLINE_MS,
      `read Redis at ${config.redisUrl.replace(/\/\/[^@/]*@/, "//***@")}`,
    );
  } catch (error) {
    result.ok = false;
    result.error = errorText(error);
  } finally {
    redis.disconnect();
  }
  return result;
}

/**
 * Judges one heartbeat hash: stale when the stage has beaten and its last
 * beat is older than `staleMs`.
 *
 * @example
 * ```ts
 * import { heartbeatStatus } from "./status_collect.ts";
 * heartbeatStatus("consume", { at: "2026-01-01T00:00:00.000Z" }, 15000, Date.parse("2026-01-01T00:00:20Z")).stale; // true
 * ```
 */
export function heartbeatStatus(
  stage: Stage,
  hash: Record<string, string>,
  staleMs: number,
  nowMs: number,
): HeartbeatStatus {
  const at = hash.at ?? null;
  const atMs = at === null ? NaN : Date.parse(at);
  const ageMs = Number.isFinite(atMs) ? Math.max(0, nowMs - atMs) : null;
  const present = Object.keys(hash).length > 0;
  const number = (v: string | undefined) =>
    v === undefined || v === "" || !Number.isFinite(Number(v)) ? null : Number(v);
  return {
    stage,
    present,
    at,
    age_s: ageMs === null ? null : Math.round(ageMs / 100) / 10,
    // A heartbeat without a readable time is as good as a stale one.
    stale: present && (ageMs === null || ageMs > staleMs),
    pid: number(hash.pid),
    events: number(hash.events),
    events_per_s: number(hash.events_per_s),
    dead_letters: number(hash.dead_letters),
    detail: hash.detail === undefined ? null : parseJson(hash.detail),
  };
}

async function describeKey(redis: ReturnType<typeof createRedis>, key: string) {
  const type = await redis.type(key);
  const size = type === "hash"
    ? await redis.hlen(key)
    : type === "set"
    ? await redis.scard(key)
    : type === "zset"
    ? await redis.zcard(key)
    : type === "list"
    ? await redis.llen(key)
    : 1;
  const value = type === "hash" && size <= 100
    ? await redis.hgetall(key)
    : type === "string"
    ? parseJson(await redis.get(key))
    : { size };
  return { key, type, value };
}

async function scanKeys(redis: ReturnType<typeof createRedis>, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", match, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return [...new Set(keys)];
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
