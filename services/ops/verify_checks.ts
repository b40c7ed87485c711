/**
 * The reconciliation `verify` runs, as a pure function of what it read: the
 * source rows are the truth, and every later store must hold exactly the
 * same counts and cents.
 *
 * @module
 */

import { BEHAVIOR_TYPES, CART_TYPES, METRIC_FIELDS, type TopicKey } from "../../lib/contracts.ts";

/** Units and revenue of one category. */
export interface CategoryFacts {
  units: number;
  revenue_cents: number;
}

/** What the shop and CRM databases hold. */
export interface SourceFacts {
  transactions: number;
  total_cents: number;
  item_rows: number;
  units: number;
  item_revenue_cents: number;
  categories: Record<string, CategoryFacts>;
  /** Behaviour rows by event type. */
  behavior: Record<string, number>;
}

/** Distinct valid event ids per topic. */
export type TopicFacts = Partial<Record<TopicKey, number>>;

export interface WarehouseFacts {
  /** realtime_events rows by event type. */
  events: Record<string, number>;
  sales_rows: number;
  sales_units: number;
  sales_revenue_cents: number;
  categories: Record<string, CategoryFacts>;
}

export interface RedisFacts {
  /** `metrics:totals`. */
  totals: Record<string, number>;
  /** Field sums over every `metrics:window:<start>` hash. */
  windowSums: Record<string, number>;
  /** Late events' contributions (never folded into a window), by the same fields. */
  late: Record<string, number>;
  /** Sums of windows retired by the retention, by the same fields. */
  expired: Record<string, number>;
}

export interface Facts {
  source: SourceFacts;
  topics: TopicFacts;
  warehouse: WarehouseFacts;
  redis: RedisFacts;
}

/** One line of the table. */
export interface Check {
  check: string;
  expected: number;
  actual: number;
  ok: boolean;
}

/** The one field of the window hashes that is a flag, not an additive counter. */
const NOT_SUMMED = new Set<string>([METRIC_FIELDS.final]);

/**
 * Every check, in pipeline order: source, Kafka, warehouse, Redis.
 *
 * @example
 * ```ts ignore
 * const failed = reconcile(facts).filter((c) => !c.ok);
 * ```
 */
export function reconcile({ source, topics, warehouse, redis }: Facts): Check[] {
  const checks: Check[] = [];
  const add = (check: string, expected: number, actual: number) =>
    checks.push({ check, expected, actual, ok: expected === actual });
  const behaviorTotal = sum(Object.values(source.behavior));
  const count = (type: string) => source.behavior[type] ?? 0;

  add("instashop: sum(total_cents) = items revenue", source.item_revenue_cents, source.total_cents);

  const topicExpected: [TopicKey, string, number][] = [
    ["transactions", "transactions", source.transactions],
    ["userBehavior", "user_behavior", behaviorTotal],
    ["searches", "searches", count("search")],
    ["cartEvents", "cart_events", sum(CART_TYPES.map(count))],
    ["transactionItems", "transaction_items", source.item_rows],
  ];
  for (const [key, topic, expected] of topicExpected) {
    add(`kafka ${topic}: distinct event ids`, expected, topics[key] ?? 0);
  }

  add(
    "warehouse realtime_events: transaction",
    source.transactions,
    warehouse.events.transaction ?? 0,
  );
  for (const type of union(BEHAVIOR_TYPES, Object.keys(source.behavior))) {
    add(`warehouse realtime_events: ${type}`, count(type), warehouse.events[type] ?? 0);
  }
  const known = new Set<string>([
    "transaction",
    ...BEHAVIOR_TYPES,
    ...Object.keys(source.behavior),
  ]);
  for (const [type, rows] of Object.entries(warehouse.events)) {
    if (!known.has(type)) add(`warehouse realtime_events: ${type}`, 0, rows);
  }
  add("warehouse fact_sales: rows", source.item_rows, warehouse.sales_rows);
  add("warehouse fact_sales: units", source.units, warehouse.sales_units);
  add(
    "warehouse fact_sales: revenue_cents",
    source.item_revenue_cents,
    warehouse.sales_revenue_cents,
  );
  for (const category of union(Object.keys(source.categories), Object.keys(warehouse.categories))) {
    const want = source.categories[category];
    const got = warehouse.categories[category];
    add(`warehouse fact_sales ${category}: units`, want?.units ?? 0, got?.units ?? 0);
    add(
      `warehouse fact_sales ${category}: revenue_cents`,
      want?.revenue_cents ?? 0,
      got?.revenue_cents ?? 0,
    );
  }

  const total = (field: string) => redis.totals[field] ?? 0;
  add("redis totals: events", source.transactions + behaviorTotal, total(METRIC_FIELDS.events));
  add(
    "redis totals: transaction_count",
    source.transactions,
    total(METRIC_FIELDS.transactionCount),
  );
  add("redis totals: revenue_cents", source.total_cents, total(METRIC_FIELDS.revenueCents));
  add("redis totals: items_sold", source.units, total(METRIC_FIELDS.itemsSold));
  const redisTypes = fieldsWith(redis.totals, /^behavior:(.+)$/);
  for (const type of union(BEHAVIOR_TYPES, Object.keys(source.behavior), redisTypes)) {
    add(`redis totals: behavior:${type}`, count(type), total(METRIC_FIELDS.behavior(type)));
  }
  const redisCategories = fieldsWith(redis.totals, /^category:(.+):(?:units|revenue_cents)$/);
  for (const category of union(Object.keys(source.categories), redisCategories)) {
    const want = source.categories[category];
    add(
      `redis totals: category:${category}:units`,
      want?.units ?? 0,
      total(METRIC_FIELDS.categoryUnits(category)),
    );
    add(
      `redis totals: category:${category}:revenue_cents`,
      want?.revenue_cents ?? 0,
      total(METRIC_FIELDS.categoryRevenueCents(category)),
    );
  }

  // Every event is in exactly one place besides the totals: a window, the late sums, or the
  // sums of windows the retention retired. late_events is in the late sums only.
  const fields = union(
    Object.keys(redis.totals),
    Object.keys(redis.windowSums),
    Object.keys(redis.late),
    Object.keys(redis.expired),
  ).filter((f) => !NOT_SUMMED.has(f));
  for (const field of fields) {
    add(
      `redis windows + late + expired = totals: ${field}`,
      total(field),
      (redis.windowSums[field] ?? 0) + (redis.late[field] ?? 0) + (redis.expired[field] ?? 0),
    );
  }
  return checks;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function union(...lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat())].sort();
}

function fieldsWith(hash: Record<string, number>, pattern: RegExp): string[] {
  return Object.keys(hash).map((k) => k.match(pattern)?.[1]).filter((v): v is string => !!v);
}
