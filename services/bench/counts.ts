/**
 * The counts a run must reconcile: source rows, published events, warehouse
 * rows and the aggregator's `events` total, all read from the namespace.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { METRIC_FIELDS, names, REDIS_KEYS } from "../../lib/contracts.ts";
import { connect } from "../../lib/db.ts";
import { createKafka, topicMessageCount } from "../../lib/kafka.ts";
import { createRedis } from "../../lib/redis.ts";
import type { Reconcile } from "./measurements.ts";

async function countRows(url: string, table: string): Promise<number> {
  const sql = connect(url, { max: 1 });
  try {
    const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
    return Number(row?.n ?? 0);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** Messages on each topic of the namespace, by topic key. */
export async function topicCounts(config: Config): Promise<Record<string, number>> {
  const n = names(config.namespace);
  const admin = createKafka(config, { clientId: "bench-counts" }).admin();
  await admin.connect();
  try {
    const out: Record<string, number> = {};
    for (const [key, topic] of Object.entries(n.topics)) {
      out[key] = await topicMessageCount(admin, topic).catch(() => 0);
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/** Reads every count and whether they agree. */
export async function reconcile(
  config: Config,
): Promise<Reconcile & { topics: Record<string, number> }> {
  const [transactions, behavior, warehouse] = await Promise.all([
    countRows(config.databases.instashop, "transactions"),
    countRows(config.databases.crm, "user_behavior"),
    countRows(config.databases.dwh, "realtime_events"),
  ]);
  const topics = await topicCounts(config);
  const items = await itemsInShop(config);
  const redis = createRedis(config);
  let metrics = 0;
  let itemsSold = 0;
  try {
    const [events, sold] = await redis.hmget(
      names(config.namespace).redis(REDIS_KEYS.totals),
      METRIC_FIELDS.events,
      METRIC_FIELDS.itemsSold,
    );
    metrics = Number(events ?? 0);
    itemsSold = Number(sold ?? 0);
  } finally {
    redis.disconnect();
  }
  const generated = transactions + behavior;
  const published = (topics.transactions ?? 0) + (topics.userBehavior ?? 0);
  return {
    generated,
    transactions,
    behavior,
    published_events: published,
    warehouse_rows: warehouse,
    metrics_events: metrics,
    items_in_shop: items,
    metrics_items_sold: itemsSold,
    ok: generated === published && generated === warehouse && generated === metrics &&
      items === itemsSold,
    topics,
  };
}

/** Every message the producer published (subset topics included). */
export function publishedMessages(topics: Record<string, number>): number {
  return (topics.transactions ?? 0) + (topics.userBehavior ?? 0) + (topics.searches ?? 0) +
    (topics.cartEvents ?? 0);
}

/** Units sold in the shop (sum of item quantities): what `items_sold` must reach. */
export async function itemsInShop(config: Config): Promise<number> {
  const sql = connect(config.databases.instashop, { max: 1 });
  try {
    const [row] = await sql<{ n: number }[]>`
      select coalesce(sum(quantity), 0)::bigint as n from transaction_details`;
    return Number(row?.n ?? 0);
  } finally {
    await sql.end({ timeout: 2 });
  }
}
