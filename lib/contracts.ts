/**
 * The contracts between stages: names (databases, topics, consumer groups,
 * Redis keys and channels, all namespaced) and the message schemas, with the
 * validators every stage runs at its boundary. A change to a contract is made
 * here, once. docs/contracts.md describes the same in prose.
 *
 * @module
 */

// ---------------------------------------------------------------- namespacing

/** Logical database names; see {@link namespaceDatabase}. */
export type DatabaseName = "instashop" | "crm" | "dwh";

/** Returns why `namespace` is unusable, or undefined when it is fine (empty is fine). */
export function validateNamespace(namespace: string): string | undefined {
  if (namespace === "") return undefined;
  if (!/^[a-z][a-z0-9_]{0,39}$/.test(namespace)) {
    return "it must start with a-z and hold only a-z, 0-9 and _ (at most 40)";
  }
  return undefined;
}

/**
 * @example
 * ```ts
 * import { namespaceDatabase } from "./contracts.ts";
 * namespaceDatabase("t1", "crm_db"); // "t1_crm_db"
 * namespaceDatabase("", "crm_db"); // "crm_db"
 * ```
 */
export function namespaceDatabase(namespace: string, database: string): string {
  return namespace ? `${namespace}_${database}` : database;
}

// --------------------------------------------------------------------- topics

/** Topic names as the seed has them; {@link names} prefixes them with `N.`. */
export const TOPICS = {
  transactions: "transactions",
  userBehavior: "user_behavior",
  searches: "searches",
  cartEvents: "cart_events",
  transactionItems: "transaction_items",
  deadLetters: "dead_letters",
} as const;
export type TopicKey = keyof typeof TOPICS;

/** Stages, used for consumer groups, heartbeats and log prefixes. */
export const STAGES = ["generate", "produce", "consume", "aggregate", "dashboard"] as const;
export type Stage = typeof STAGES[number];

/** Default consumer group ids (stable, so that a restart resumes). */
export const GROUPS = {
  consume: "instashop-warehouse",
  aggregate: "instashop-metrics",
} as const;

/** Headers a dead letter carries; its value and key are the original bytes. */
export const DEAD_LETTER_HEADERS = {
  sourceTopic: "dlq.source.topic",
  sourcePartition: "dlq.source.partition",
  sourceOffset: "dlq.source.offset",
  reason: "dlq.reason",
  stage: "dlq.stage",
  failedAt: "dlq.failed_at",
} as const;

/** Largest message value a stage accepts; larger ones go to dead letters. */
export const MAX_EVENT_BYTES = 256 * 1024;

// ---------------------------------------------------------------- Redis keys

/** Redis keys below the namespace prefix `N:`; see {@link names}. */
export const REDIS_KEYS = {
  /** Hash: transaction_count, revenue_cents, items_sold, behavior:<type>, late_events, ... */
  totals: "metrics:totals",
  /** String (JSON), the seed's `GET metrics:transactions`, latest window. */
  transactions: "metrics:transactions",
  /** String (JSON): counts by event type, latest window. */
  behavior: "metrics:behavior",
  /** Prefix of `metrics:products:<category>` strings (JSON). */
  productsPrefix: "metrics:products:",
  /** Sorted set of window start (ms) -> window start; members index `metrics:window:<ms>`. */
  windows: "metrics:windows",
  /** Prefix of `metrics:window:<startMs>` hashes (per-window additive counters). */
  windowPrefix: "metrics:window:",
  /** Pub/sub channel: one message after each aggregator flush. */
  updates: "metrics:updates",
  /** Prefix of `pipeline:heartbeat:<stage>` hashes, see {@link Heartbeat}. */
  heartbeatPrefix: "pipeline:heartbeat:",
  /** Hash `<stage>:<topic>` -> number of dead letters a stage wrote. */
  deadLetters: "pipeline:dead_letters",
  /** Prefix of the aggregator's de-duplication bitmaps `metrics:seen:<kind>`. */
  seenPrefix: "metrics:seen:",
} as const;

/** Every namespaced name of one pipeline. */
export interface Names {
  readonly namespace: string;
  readonly topics: Readonly<Record<TopicKey, string>>;
  group(stage: keyof typeof GROUPS, override?: string): string;
  /** A Redis key or channel, e.g. `redis("metrics:totals")` -> `N:metrics:totals`. */
  redis(key: string): string;
  heartbeat(stage: Stage): string;
}

/**
 * All names of the pipeline in `namespace`.
 *
 * @example
 * ```ts
 * import { names } from "./contracts.ts";
 * const n = names("t1");
 * n.topics.transactions; // "t1.transactions"
 * n.group("consume"); // "t1.instashop-warehouse"
 * n.redis("metrics:totals"); // "t1:metrics:totals"
 * ```
 */
export function names(namespace: string): Names {
  const topic = (t: string) => namespace ? `${namespace}.${t}` : t;
  const redis = (key: string) => namespace ? `${namespace}:${key}` : key;
  const topics = Object.fromEntries(
    Object.entries(TOPICS).map(([k, v]) => [k, topic(v)]),
  ) as Record<TopicKey, string>;
  return {
    namespace,
    topics,
    group: (stage, override) => topic(override ?? GROUPS[stage]),
    redis,
    heartbeat: (stage) => redis(`${REDIS_KEYS.heartbeatPrefix}${stage}`),
  };
}

// ------------------------------------------------------------------- schemas

export const SCHEMA_VERSION = 1;

export const BEHAVIOR_TYPES = [
  "page_view",
  "product_view",
  "search",
  "add_to_cart",
  "remove_from_cart",
] as const;
export type BehaviorType = typeof BEHAVIOR_TYPES[number];
/** Behaviour types that also go to `cart_events`. */
export const CART_TYPES: readonly BehaviorType[] = ["add_to_cart", "remove_from_cart"];

export const PAYMENT_METHODS = ["credit_card", "debit_card", "paypal", "bank_transfer"] as const;

/** Deterministic event ids: one per source row, stable across re-sends. */
export const eventId = {
  transaction: (transactionId: number | bigint) => `txn-${transactionId}`,
  behavior: (behaviorId: number | bigint) => `ub-${behaviorId}`,
  transactionItem: (detailId: number | bigint) => `ti-${detailId}`,
};

/** Fields every event carries. `timestamp` is event time, ISO 8601 UTC with `Z`. */
export interface EventBase {
  schema_version: number;
  event_id: string;
  event_type: string;
  customer_id: number;
  timestamp: string;
}

export interface TransactionItem {
  detail_id: number;
  product_id: number;
  product_name: string;
  category: string;
  quantity: number;
  unit_price_cents: number;
}

/** On `transactions`; key = customer id. */
export interface TransactionEvent extends EventBase {
  event_type: "transaction";
  transaction_id: number;
  buyer_id: number | null;
  total_cents: number;
  payment_method: string;
  status: string;
  items: TransactionItem[];
}

/** On `user_behavior`, and also on `searches` / `cart_events` for those types. */
export interface BehaviorEvent extends EventBase {
  event_type: BehaviorType;
  behavior_id: number;
  session_id: string;
  product_id: number | null;
  search_query: string | null;
  device: string;
}

/** On `transaction_items`, one per item, made by the consumer. */
export interface TransactionItemEvent extends EventBase {
  event_type: "transaction_item";
  transaction_id: number;
  detail_id: number;
  product_id: number;
  product_name: string;
  category: string;
  quantity: number;
  unit_price_cents: number;
  revenue_cents: number;
}

export type PipelineEvent = TransactionEvent | BehaviorEvent | TransactionItemEvent;

/** What an aggregator or a consumer writes to its heartbeat hash (all values strings in Redis). */
export interface Heartbeat {
  stage: Stage;
  pid: number;
  /** ISO time of the last beat. */
  at: string;
  events: number;
  events_per_s: number;
  dead_letters: number;
  /** Free-form JSON for stage-specific details (lag, watermark, cursor). */
  detail: string;
}

// ------------------------------------------------------------ Redis values

/**
 * Field names of `metrics:totals` and of each `metrics:window:<startMs>` hash
 * (the same fields, so that window sums plus late events reconcile with the
 * totals). All values are integers; money in cents.
 */
export const METRIC_FIELDS = {
  /** Events counted: transactions + behaviour events (not items). */
  events: "events",
  transactionCount: "transaction_count",
  revenueCents: "revenue_cents",
  itemsSold: "items_sold",
  /** Events behind the watermark on arrival: in totals, not folded into a window. */
  lateEvents: "late_events",
  behavior: (type: string) => `behavior:${type}`,
  categoryUnits: (category: string) => `category:${category}:units`,
  categoryRevenueCents: (category: string) => `category:${category}:revenue_cents`,
  /** Window hashes only: "1" once the watermark passed the window's end. */
  final: "final",
} as const;

/** `GET metrics:transactions`: the seed's shape, for the latest window. */
export interface TransactionMetrics {
  transaction_count: number;
  /** Currency units (cents / 100), as the seed; exact value in `total_revenue_cents`. */
  total_revenue: number;
  total_revenue_cents: number;
  avg_order_value: number;
  avg_order_value_cents: number;
  window_start: string;
  window_end: string;
  last_update: string;
}

/** `GET metrics:behavior`: counts by event type in the latest window. */
export interface BehaviorMetrics {
  counts: Record<string, number>;
  window_start: string;
  window_end: string;
  last_update: string;
}

/** `GET metrics:products:<category>`: running totals of one category. */
export interface CategoryMetrics {
  category: string;
  product_sales: number;
  category_revenue: number;
  category_revenue_cents: number;
  last_update: string;
}

/** A message on `metrics:updates`; subscribers re-read the keys they show. */
export interface MetricsUpdate {
  at: string;
  /** Events folded in by this flush. */
  events: number;
  latest_window_start: string | null;
}

export * from "./schemas.ts";
