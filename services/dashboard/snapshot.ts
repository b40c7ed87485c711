/**
 * Reads the aggregator's metrics from Redis: the running totals, the recent
 * windows and the stages' heartbeats, in two round trips. The parsers are
 * pure and tolerate missing or malformed fields (a half-written key shows as
 * zero, never as an error page).
 *
 * @module
 */

import {
  type BehaviorMetrics,
  METRIC_FIELDS,
  type Names,
  REDIS_KEYS,
  type Stage,
  type TransactionMetrics,
} from "../../lib/contracts.ts";
import type { Redis } from "../../lib/redis.ts";
import type { BehaviorPoint, CategoryPoint, WindowPoint } from "./model.ts";

/** The stages whose heartbeats the status panel reads. */
export const HEARTBEAT_STAGES = ["produce", "consume", "aggregate"] as const satisfies Stage[];
export type HeartbeatStage = typeof HEARTBEAT_STAGES[number];

/** The part of a heartbeat the dashboard uses. */
export interface HeartbeatView {
  atMs: number;
  eventsPerSecond: number;
}

export interface Totals {
  events: number;
  transactions: number;
  revenueCents: number;
  itemsSold: number;
  lateEvents: number;
}

/** Everything the dashboard reads from Redis at one moment. */
export interface RedisSnapshot {
  totals: Totals;
  categories: CategoryPoint[];
  behavior: BehaviorPoint[];
  windows: WindowPoint[];
  heartbeats: Partial<Record<HeartbeatStage, HeartbeatView>>;
  /** The aggregator's last write (ISO), from the latest-window keys. */
  lastUpdate: string | null;
}

export interface ReadSnapshotOptions {
  /** How many recent windows to read (default 30). */
  windowCount?: number;
}

/**
 * Reads one snapshot. Totals, latest-window keys, the window index and the
 * heartbeats come from one MULTI (a consistent view); the window hashes follow
 * in one pipeline.
 *
 * @example
 * ```ts ignore
 * const snapshot = await readRedisSnapshot(redis, names("demo"));
 * snapshot.totals.revenueCents;
 * ```
 */
export async function readRedisSnapshot(
  redis: Redis,
  n: Names,
  { windowCount = 30 }: ReadSnapshotOptions = {},
): Promise<RedisSnapshot> {
  const first = redis.multi()
    .hgetall(n.redis(REDIS_KEYS.totals))
    .get(n.redis(REDIS_KEYS.transactions))
    .get(n.redis(REDIS_KEYS.behavior))
    .zrevrange(n.redis(REDIS_KEYS.windows), 0, windowCount - 1);
  for (const stage of HEARTBEAT_STAGES) first.hgetall(n.heartbeat(stage));
  const [totalsHash, transactionsJson, behaviorJson, windowStarts, ...beats] = results(
    await first.exec(),
  );

  const starts = (windowStarts as string[] ?? []).filter((s) => /^\d+$/.test(s)).reverse();
  const second = redis.pipeline();
  for (const start of starts) second.hgetall(n.redis(`${REDIS_KEYS.windowPrefix}${start}`));
  const windowHashes = starts.length > 0 ? results(await second.exec()) : [];

  const totals = parseTotals(totalsHash as Record<string, string> ?? {});
  const heartbeats: RedisSnapshot["heartbeats"] = {};
  HEARTBEAT_STAGES.forEach((stage, i) => {
    const beat = parseHeartbeat(beats[i] as Record<string, string> ?? {});
    if (beat) heartbeats[stage] = beat;
  });
  const latestTxn = parseJson<TransactionMetrics>(transactionsJson);
  const latestBehavior = parseJson<BehaviorMetrics>(behaviorJson);
  return {
    ...totals,
    windows: starts.map((start, i) =>
      parseWindow(Number(start), windowHashes[i] as Record<string, string> ?? {})
    ),
    heartbeats,
    lastUpdate: latest(latestTxn?.last_update, latestBehavior?.last_update),
  };
}

function results(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error("Redis aborted the read transaction");
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

/** An integer field; anything else (missing, malformed) counts as 0. */
function int(hash: Record<string, string>, field: string): number {
  const value = Number(hash[field]);
  return Number.isSafeInteger(value) ? value : 0;
}

const CATEGORY_FIELD = /^category:(.*):(units|revenue_cents)$/s;
const BEHAVIOR_FIELD = /^behavior:(.+)$/s;

/**
 * Parses a `metrics:totals` hash (or a window hash) into totals, categories
 * (largest revenue first) and behaviour counts (largest first).
 *
 * @example
 * ```ts
 * import { parseTotals } from "./snapshot.ts";
 * const t = parseTotals({ events: "3", "category:Books:units": "2", "behavior:search": "1" });
 * t.totals.events; // 3
 * t.categories[0]; // { category: "Books", units: 2, revenueCents: 0 }
 * ```
 */
export function parseTotals(hash: Record<string, string>): {
  totals: Totals;
  categories: CategoryPoint[];
  behavior: BehaviorPoint[];
} {
  const categories = new Map<string, CategoryPoint>();
  const behavior: BehaviorPoint[] = [];
  for (const field of Object.keys(hash)) {
    const category = CATEGORY_FIELD.exec(field);
    if (category) {
      const name = category[1]!;
      const point = categories.get(name) ?? { category: name, units: 0, revenueCents: 0 };
      if (category[2] === "units") point.units = int(hash, field);
      else point.revenueCents = int(hash, field);
      categories.set(name, point);
      continue;
    }
    const type = BEHAVIOR_FIELD.exec(field);
    if (type) behavior.push({ type: type[1]!, count: int(hash, field) });
  }
  return {
    totals: {
      events: int(hash, METRIC_FIELDS.events),
      transactions: int(hash, METRIC_FIELDS.transactionCount),
      revenueCents: int(hash, METRIC_FIELDS.revenueCents),
      itemsSold: int(hash, METRIC_FIELDS.itemsSold),
      lateEvents: int(hash, METRIC_FIELDS.lateEvents),
    },
    categories: [...categories.values()].sort((a, b) =>
      b.revenueCents - a.revenueCents || a.category.localeCompare(b.category)
    ),
    behavior: behavior.sort((a, b) => b.count - a.count || a.type.localeCompare(b.type)),
  };
}

/** Parses one `metrics:window:<startMs>` hash. */
export function parseWindow(startMs: number, hash: Record<string, string>): WindowPoint {
  return {
    startMs,
    events: int(hash, METRIC_FIELDS.events),
    transactions: int(hash, METRIC_FIELDS.transactionCount),
    revenueCents: int(hash, METRIC_FIELDS.revenueCents),
    final: hash[METRIC_FIELDS.final] === "1",
  };
}

/** Parses a heartbeat hash; undefined when it is absent or has no valid `at`. */
export function parseHeartbeat(hash: Record<string, string>): HeartbeatView | undefined {
  const atMs = Date.parse(hash.at ?? "");
  if (Number.isNaN(atMs)) return undefined;
  const rate = Number(hash.events_per_s);
  return { atMs, eventsPerSecond: Number.isFinite(rate) && rate >= 0 ? rate : 0 };
}

function parseJson<T>(raw: unknown): Partial<T> | undefined {
  if (typeof raw !== "string") return undefined;
  try {
    const value = JSON.parse(raw);
    return value && typeof value === "object" ? value as Partial<T> : undefined;
  } catch {
    return undefined;
  }
}

function latest(...times: (string | undefined)[]): string | null {
  let best: number | undefined;
  for (const time of times) {
    const ms = Date.parse(time ?? "");
    if (!Number.isNaN(ms) && (best === undefined || ms > best)) best = ms;
  }
  return best === undefined ? null : new Date(best).toISOString();
}
